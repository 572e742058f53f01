"""The ``labkit`` command: its defaults, its refusals, its error lines, and commands run for real."""

import os
import subprocess
import sys

import pytest

from labkit import cli, topics


def labkit(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "labkit", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_defaults_are_the_lab_s_values():
    """Written out from docs/architecture.md and the README, not read from the modules."""
    parser = cli.build_parser()
    stream = parser.parse_args(["stream"])
    assert (stream.window, stream.slide, stream.watermark) == ("10 seconds", "5 seconds", "10 seconds")
    assert (stream.query_name, stream.rooms, stream.trigger) == ("telemetry_5s_agg", 8, "5 seconds")
    simulate = parser.parse_args(["simulate"])
    assert (simulate.rooms, simulate.interval) == (8, 0.5)
    assert parser.parse_args(["bridge"]).client_id == "labkit-bridge"


@pytest.mark.parametrize("bad", ["0", "-3", "eight"])
def test_a_building_without_rooms_is_refused_before_anything_runs(bad, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.build_parser().parse_args(["topics", "--rooms", bad])
    assert exit_.value.code == 2
    assert "--rooms" in capsys.readouterr().err


def test_a_labkit_error_prints_error_and_next_lines(tmp_path):
    """Nothing runs in a fresh state folder: `status --check` says so and what to do, exit status 1."""
    result = labkit("status", "--check", env={"LABKIT_STATE_DIR": str(tmp_path / "state")})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "stopped" in result.stdout
    assert result.stderr.splitlines() == ["error: some services are not healthy", "next: run `labkit up`"]


@pytest.mark.services
def test_topics_creates_the_topics_of_the_building(stack):
    result = labkit("topics", "--rooms", "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("5 topics ready (retention 72 h): telemetry.room_1, telemetry.room_2, ")
    assert {"telemetry.room_2.downsampled", "telemetry.dlq"} <= topics.existing_topics()


def test_init_metadata_creates_the_rooms_table(tmp_path):
    db = tmp_path / "metadata.db"
    result = labkit("init-metadata", "--rooms", "9", env={"LABKIT_METADATA_DB": str(db)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"rooms table ready in {db} (9 rooms)"
