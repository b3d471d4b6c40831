"""The embedded mode of `make run`: a task sent through kombu's file-system broker and executed by a
real `celery worker` process, with the settings' defaults (no DATABASE_URL, no CELERY_BROKER_URL)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def embedded_env(var_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"}}
    env.update(DEBUG="1", COURSEPLATFORM_VAR=str(var_dir), DJANGO_SETTINGS_MODULE="courseplatform.settings",
               PYTHONUNBUFFERED="1")
    return env


@pytest.mark.timeout(120)
def test_task_runs_through_filesystem_broker(tmp_path):
    var_dir = tmp_path / "var"
    env = embedded_env(var_dir)
    out = tmp_path / "pong.txt"
    token = uuid.uuid4().hex
    # Send first: the message waits as a file until a worker takes it.
    send = subprocess.run(
        [sys.executable, "-c",
         # a producer is a Django process (the web or a worker): apps ready, var/ folders created
         "import sys, django; django.setup(); from courseplatform.courses.tasks import ping; "
         "from django.conf import settings; assert settings.CELERY_BROKER_URL == 'filesystem://'; "
         "ping.apply_async(args=[sys.argv[1], sys.argv[2]], queue='cpu')",
         str(out), token],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert send.returncode == 0, send.stderr
    queued = list((var_dir / "celery" / "queue").glob("*.msg"))
    assert len(queued) == 1 and not out.exists()

    log = open(tmp_path / "worker.log", "w")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "courseplatform", "worker", "-Q", "cpu,gpu", "-c", "1",
         "-P", "solo", "-l", "INFO", "-n", f"test-{token[:8]}@%h", "--without-mingle", "--without-gossip"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while not out.exists() and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.2)
        log.flush()
        worker_log = (tmp_path / "worker.log").read_text()
        assert out.exists(), f"the worker did not run the task:\n{worker_log[-3000:]}"
        written_token, pid, _host = out.read_text().split()
        assert written_token == token
        assert int(pid) != os.getpid()  # executed in the worker process, not here
        assert not list((var_dir / "celery" / "queue").glob("*.msg"))  # consumed
    finally:
        worker.send_signal(signal.SIGTERM)  # warm shutdown
        try:
            code = worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
            code = None
        log.close()
    assert code == 0, (tmp_path / "worker.log").read_text()[-3000:]
    assert "courses.ping" in (tmp_path / "worker.log").read_text()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(180)
def test_devserver_serves_login_and_stops_cleanly_on_ctrl_c(tmp_path):
    """`make run`'s last step: web server + worker; Ctrl-C stops both and leaves no process behind."""
    import urllib.request

    import psutil

    port = free_port()
    env = embedded_env(tmp_path / "var")
    env.update(PORT=str(port), HOST="127.0.0.1", WEB_WORKERS="1", WORKER_CONCURRENCY="1", STOP_GRACE_S="40")
    log = open(tmp_path / "devserver.log", "w")
    dev = subprocess.Popen([sys.executable, "-m", "courseplatform.devserver"], cwd=ROOT, env=env,
                           stdout=log, stderr=subprocess.STDOUT)
    try:
        body, deadline = "", time.monotonic() + 120
        while time.monotonic() < deadline and dev.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=5) as r:
                    body = r.read().decode()
                break
            except OSError:
                time.sleep(0.5)
        assert 'name="username"' in body, (tmp_path / "devserver.log").read_text()[-3000:]
        # wait until the worker is up too, then collect the whole process tree
        while time.monotonic() < deadline and "ready." not in (tmp_path / "devserver.log").read_text():
            time.sleep(0.5)
        tree = psutil.Process(dev.pid).children(recursive=True)
        assert len(tree) >= 4  # gunicorn master + worker, celery main + pool process
        dev.send_signal(signal.SIGINT)
        code = dev.wait(timeout=60)
    finally:
        if dev.poll() is None:
            dev.kill()
        log.close()
    text = (tmp_path / "devserver.log").read_text()
    assert code == 0, text[-3000:]
    assert "Demo logins" in text and "instructor / instructor-demo" in text
    assert "Stopped." in text
    alive = [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"orphans left: {alive}"
