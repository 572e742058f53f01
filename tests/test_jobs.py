"""labkit.jobs: a job started in a process group of its own, killed as a whole, its log.

A stand-in job (a Python parent that starts a child and sleeps, like ``labkit stream`` and its
JVM) keeps these tests quick; the real ``labkit stream`` is killed and restarted in
test_pipeline.py and lesson 07.
"""

import signal
import sys

from labkit import cli, jobs, names
from labkit.progress import wait_until

PARENT_AND_CHILD = [
    sys.executable,
    "-c",
    (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        "print('started child', child.pid, flush=True)\n"
        "print('   a stack-trace line', flush=True)\n"
        "print('26/11/29 10:00:00 WARN Something Spark says', flush=True)\n"
        "time.sleep(120)\n"
    ),
]


def test_kill_takes_the_whole_process_group(tmp_path):
    job = jobs.start(PARENT_AND_CHILD, tmp_path / "job.log")
    assert wait_until(lambda: len(job.processes()) == 2, "the job and its child", timeout=30)
    family = job.processes()
    assert job.kill() == -signal.SIGKILL
    assert wait_until(lambda: not jobs.still_running(family), "both gone", timeout=10), jobs.describe(family)


def test_the_log_tail_leaves_out_warnings_and_indented_lines(tmp_path):
    job = jobs.start(PARENT_AND_CHILD, tmp_path / "job.log")
    try:
        assert wait_until(lambda: "WARN" in job.log_path.read_text(), "the job's output", timeout=30)
        assert [line.split()[:2] for line in job.log_tail()] == [["started", "child"]]
    finally:
        job.kill()


def test_a_second_run_appends_to_the_same_log(tmp_path):
    log = tmp_path / "job.log"
    for _ in range(2):
        job = jobs.start([sys.executable, "-c", "print('run')"], log)
        assert job.process.wait(30) == 0
    assert log.read_text().split() == ["run", "run"]


def test_the_stream_command_is_one_labkit_stream_understands():
    command = jobs.stream_command(
        "job_x", "/lake/job_x", {"telemetry.room_1": {"0": 7}}, max_offsets_per_trigger=200, until_caught_up=True
    )
    assert command[:4] == [sys.executable, "-m", "labkit", "stream"]
    args = cli.build_parser().parse_args(command[3:])
    assert (args.query_name, args.table, args.starting_offsets) == (
        "job_x",
        "/lake/job_x",
        '{"telemetry.room_1": {"0": 7}}',
    )
    assert (args.max_offsets_per_trigger, args.trigger, args.no_kafka, args.until_caught_up) == (200, "", True, True)
    assert args.rooms == names.DEFAULT_ROOM_COUNT
