"""Background processes: start one, remember it in a pid file, find it again, stop it.

Everything a run leaves behind sits in one state folder (``LABKIT_STATE_DIR``): a pid file,
a log and the data of each service. Stopping checks that a pid still belongs to the process
that was started (a pid alone is not proof: after a reboot the number may belong to another
program), so ``labkit down`` stops exactly what ``labkit up`` started and nothing else.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import psutil

from labkit import settings as settings_module
from labkit.errors import LabkitError
from labkit.progress import wait_until
from labkit.stack.probes import port_open
from labkit.stack.services import Service

Settings = settings_module.Settings


def process_tree(pid: int) -> list[psutil.Process]:
    """The process ``pid`` and every process it started (empty once it has exited)."""
    try:
        parent = psutil.Process(pid)
        return [parent] + parent.children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def still_running(processes) -> list[psutil.Process]:
    """Those of ``processes`` that still run (a zombie has exited; it only waits to be reaped)."""
    running = []
    for p in processes:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                running.append(p)
        except psutil.NoSuchProcess:
            pass
    return running


def pid_file(s: Settings, name: str) -> Path:
    return s.state_dir / "pids" / f"{name}.json"


def log_file(s: Settings, name: str) -> Path:
    return s.state_dir / "logs" / f"{name}.log"


def running_process(s: Settings, name: str) -> psutil.Process | None:
    """The process ``up`` started for ``name``, if it still runs.

    A pid alone is not proof: after a reboot the number may belong to another program. The
    pid file also keeps the process's start time, and both must match.
    """
    path = pid_file(s, name)
    if not path.exists():
        return None
    record = json.loads(path.read_text())
    try:
        process = psutil.Process(record["pid"])
        if abs(process.create_time() - record["create_time"]) < 1 and process.status() != psutil.STATUS_ZOMBIE:
            return process
    except psutil.Error:
        pass
    return None


def log_tail(s: Settings, name: str, lines: int = 20) -> str:
    log = log_file(s, name)
    if not log.exists():
        return "(no log)"
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def start_service(s: Settings, service: Service) -> None:
    if running_process(s, service.name):
        print(f"{service.name}: already running on {service.host}:{service.port}")
        return
    for port, variable in service.ports.items():
        if port_open(service.host, port):
            raise LabkitError(
                f"port {port} on {service.host} is already in use by another program, so {service.name} cannot start.",
                f"stop that program (`lsof -i :{port}` shows it) or set {variable} to a free "
                "port (see `labkit settings`)",
            )
    service.prepare()
    command = service.command()
    env = {**os.environ, **service.env()}
    log = log_file(s, service.name)
    log.parent.mkdir(parents=True, exist_ok=True)
    pid_file(s, service.name).parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as log_handle:
        # a session of its own: Ctrl-C in the terminal (or a notebook interrupt) does not kill it
        process = subprocess.Popen(
            command,
            stdout=log_handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=s.state_dir,
            start_new_session=True,
        )
    record = {
        "pid": process.pid,
        "create_time": psutil.Process(process.pid).create_time(),
        "port": service.port,
        "command": command,
    }
    pid_file(s, service.name).write_text(json.dumps(record, indent=2))

    def healthy_or_exited() -> bool:
        return process.poll() is not None or service.healthy()

    wait_until(
        healthy_or_exited, f"starting {service.name} on {service.host}:{service.port}:", timeout=service.start_timeout
    )
    if process.poll() is not None or not service.healthy():
        exited = process.poll()
        stop_service(s, service.name)
        why = (
            f"exited with code {exited}"
            if exited is not None
            else f"is not healthy after {service.start_timeout:.0f} s"
        )
        raise LabkitError(
            f"{service.name} {why}. Last lines of {log}:\n{log_tail(s, service.name)}",
            "read the log above; `labkit down` then `labkit up` retries from a clean start",
        )


def stop_service(s: Settings, name: str, timeout: float = 20) -> bool:
    """Stop the process ``up`` started for ``name`` (SIGTERM, then SIGKILL). True if it ran."""
    process = running_process(s, name)
    pid_file(s, name).unlink(missing_ok=True)
    if process is None:
        return False
    family = process_tree(process.pid)
    for p in family:
        try:
            p.send_signal(signal.SIGTERM)
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(family, timeout=timeout)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=5)
    return True
