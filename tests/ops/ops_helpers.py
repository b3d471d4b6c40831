"""Helpers of the operations tests (a module of its own: `conftest` names clash across test folders)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from django.utils import timezone

SUBMISSION_TESTS = Path(__file__).resolve().parents[1] / "submissions"
if str(SUBMISSION_TESTS) not in sys.path:
    sys.path.insert(0, str(SUBMISSION_TESTS))

from cp_workers import ROOT, wait_for, worker_env  # noqa: E402,F401 (wait_for: the ops tests import it from here)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_tree(pid: int) -> list:
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def sigkill_tree(procs) -> None:
    """SIGKILL every process given (a host dying): no signal handler, no ack, no cleanup."""
    import psutil

    for p in procs:
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    # Our own child (a launcher) is reaped by its Popen, which keeps its exit status.
    psutil.wait_procs([p for p in procs if p.ppid() != os.getpid()] if procs else [], timeout=20)


class Devserver:
    """`python -m courseplatform.devserver` (the last step of `make run`) on the test database."""

    def __init__(self, tmp_path: Path, name: str, **env):
        self.port = free_port()
        self.log_path = tmp_path / f"devserver-{name}.log"
        full = worker_env(
            PORT=self.port, HOST="127.0.0.1", WEB_WORKERS=1, WORKER_CONCURRENCY=1, WORKER_NAME=name,
            COURSEPLATFORM_VAR=tmp_path / f"var-{name}", STOP_GRACE_S=30, **env)
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "courseplatform.devserver"], cwd=ROOT, env=full,
                                     stdout=self._log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int | None:
        """Ctrl-C, as a person would; SIGKILL of the whole tree if it does not stop."""
        tree = process_tree(self.proc.pid)
        code = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                code = self.proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                pass
        else:
            code = self.proc.returncode
        sigkill_tree([p for p in tree if p.is_running()])
        self._log.close()
        return code


def due_in_days(days: int):
    return timezone.now() + timedelta(days=days)
