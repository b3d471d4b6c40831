"""Issue 11, first run: `make run` says what each long step does, and prints the demo logins once,
when the site answers (by the launcher the user is looking at; load_demo only with --logins)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_make_run_names_each_long_step_and_asks_load_demo_for_no_logins():
    run = subprocess.run(["make", "-n", "-B", "run"], cwd=ROOT, capture_output=True, text=True, timeout=60).stdout
    steps = [line[line.index("==> "):] for line in run.splitlines() if "echo \"==> " in line]
    text = "\n".join(steps)
    for what in ("virtual environment", "requirements.txt", "migrate", "demo course", "web server"):
        assert what in text, text
    load = [line for line in run.splitlines() if "manage.py load_demo" in line]
    assert load and "--logins" not in load[0]
    # pip says which package it is on (not --quiet) for the long install from requirements.txt
    assert any("-r requirements.txt" in line and "--quiet" not in line for line in run.splitlines())
    demo = subprocess.run(["make", "-n", "-B", "demo"], cwd=ROOT, capture_output=True, text=True, timeout=60).stdout
    assert any("manage.py load_demo" in line and "--logins" in line for line in demo.splitlines())


@pytest.mark.timeout(180)
def test_devserver_announces_progress_then_logins_once_when_the_site_answers(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"}}
    env.update(DEBUG="1", COURSEPLATFORM_VAR=str(tmp_path / "var"), DJANGO_SETTINGS_MODULE="courseplatform.settings",
               PYTHONUNBUFFERED="1", PORT=str(port), HOST="127.0.0.1", WEB_WORKERS="1", WORKER_CONCURRENCY="1",
               BEAT="0")
    log_path = tmp_path / "devserver.log"
    log = open(log_path, "w")
    dev = subprocess.Popen([sys.executable, "-m", "courseplatform.devserver"], cwd=ROOT, env=env,
                           stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and "courseplatform is up" not in log_path.read_text():
            assert dev.poll() is None, log_path.read_text()[-3000:]
            time.sleep(0.2)
        text = log_path.read_text()
        assert "courseplatform is up" in text, text[-3000:]
        # The banner comes once the web server accepts connections.
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        assert text.index("Starting web, worker") < text.index("courseplatform is up")
        dev.send_signal(signal.SIGINT)
        dev.wait(timeout=60)
    finally:
        if dev.poll() is None:
            dev.kill()
            dev.wait()
        log.close()
    text = log_path.read_text()
    assert text.count("Demo logins") == 1 and "instructor / instructor-demo" in text
