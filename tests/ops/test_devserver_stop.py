"""`make run`'s launcher behaves like a development server (issue 28, item 11).

Real processes: `python -m courseplatform.devserver` on a free port, on the test database and the
Redis broker (per-run key prefix), with the fake engine of the submission tests. With no HOST in the
environment it must listen on the loopback only. A Ctrl-C (SIGINT) while the worker is in the middle
of a long grade must stop every process within a few seconds with exit status 0, and leave the
submission to the next start, which grades it.
"""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import psutil
import pytest
from django.conf import settings

from cp_helpers import py
from cp_workers import ROOT, purge, worker_env
from ops_helpers import free_port, process_tree, sigkill_tree, wait_for
from courseplatform.submissions import services
from courseplatform.submissions.models import Submission

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True), pytest.mark.timeout(480)]

ENV = {"GRADING_HEARTBEAT_S": "0.5", "GRADING_LEASE_S": "4", "SWEEP_INTERVAL_S": "1",
       "COURSEPLATFORM_GRADE_FUNCTION": "cp_fake_grader.grade", "WEB_WORKERS": "1", "WORKER_CONCURRENCY": "1"}
# Far below the fake grade's 120 s and the old launcher's 20 s grace; generous for a loaded machine.
STOP_WITHIN_S = 15


def _start(tmp_path, name: str, port: int, **extra):
    env = worker_env(PORT=port, WORKER_NAME=name, COURSEPLATFORM_VAR=tmp_path / f"var-{name}", **ENV, **extra)
    env.pop("HOST", None)  # the default, as `python -m courseplatform.devserver` without settings
    log = (tmp_path / f"devserver-{name}.log").open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "courseplatform.devserver"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    return proc, tmp_path / f"devserver-{name}.log"


def _listening(proc, port: int) -> set[str]:
    addresses = set()
    for p in process_tree(proc.pid):
        try:
            for c in p.net_connections(kind="inet"):
                if c.status == psutil.CONN_LISTEN and c.laddr.port == port:
                    addresses.add(c.laddr.ip)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return addresses


def _state(pk):
    return Submission.objects.filter(pk=pk).values_list("state", flat=True).first()


def test_devserver_binds_loopback_and_ctrl_c_stops_everything_at_once(assignment, student, tmp_path):
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.fail("this test needs the Redis broker (CELERY_BROKER_URL=redis://...)")
    purge(("cpu", "gpu", "ops"))
    sentinel = tmp_path / "grade-started"
    sub = services.submit(assignment, student, py(text="def double(x): return 2*x\n# KILLME SCORE=10\n"),
                          is_staff=False)
    port = free_port()
    proc, log = _start(tmp_path, "first", port, FAKE_GRADER_SENTINEL=sentinel)
    second = None
    try:
        wait_for(lambda: "courseplatform is up" in log.read_text(errors="replace"), 240,
                 what="the site to answer\n" + log.read_text(errors="replace")[-3000:])
        assert _listening(proc, port) == {"127.0.0.1"}, _listening(proc, port)
        # The worker is grading (the fake grade blocks for 120 s): what Ctrl-C meets in the demo.
        wait_for(sentinel.exists, 180, what="the worker to start grading\n" + log.read_text(errors="replace")[-3000:])
        wait_for(lambda: _state(sub.pk) == "running", 30, what="running")
        tree = process_tree(proc.pid)
        assert len(tree) >= 5  # launcher, gunicorn master + worker, celery worker + pool child, beat

        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=120)
        took = time.monotonic() - started
        text = log.read_text(errors="replace")
        assert code == 0, text[-3000:]
        assert "did not stop" not in text and "Stopped." in text
        assert took < STOP_WITHIN_S, f"stopping took {took:.1f} s\n{text[-3000:]}"
        time.sleep(0.5)
        left = [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert not left, f"processes outlived the launcher: {left}"
        assert _state(sub.pk) not in ("graded", "error")  # not finished, not given up: left for the next start

        # The next start grades it (the sentinel exists now, so the fake grade is instant).
        second, log2 = _start(tmp_path, "second", free_port(), FAKE_GRADER_SENTINEL=sentinel)
        wait_for(lambda: _state(sub.pk) in ("graded", "error"), 240,
                 what="the next start to grade it\n" + log2.read_text(errors="replace")[-3000:])
        sub.refresh_from_db()
        assert sub.state == "graded" and sub.score == 10, (sub.message, log2.read_text(errors="replace")[-3000:])
        second.send_signal(signal.SIGINT)
        assert second.wait(timeout=120) == 0, log2.read_text(errors="replace")[-3000:]
    finally:
        for p in (proc, second):
            if p is not None and p.poll() is None:
                sigkill_tree(process_tree(p.pid))
