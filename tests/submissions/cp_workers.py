"""Start real Celery worker processes against the test database (used by the worker tests)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def worker_env(**extra) -> dict:
    db = connection.settings_dict
    env = dict(os.environ)
    env.update({
        "DEBUG": "1",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "PACK_STORE": str(settings.PACK_STORE),
        "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT), env.get("PYTHONPATH", "")]),
        "DB_CONN_MAX_AGE": "0",
        "LOG_LEVEL": "INFO",
    })
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def start_worker(name: str, log: Path, queues: str = "cpu", concurrency: int = 1, **env) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "celery", "-A", "courseplatform", "worker", "-Q", queues, "-c", str(concurrency),
           "-n", f"{name}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO"]
    return subprocess.Popen(cmd, cwd=ROOT, env=worker_env(**env), stdout=log.open("ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def kill_group(proc: subprocess.Popen, sig=signal.SIGKILL) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def stop_worker(proc: subprocess.Popen) -> None:
    """Warm shutdown (SIGTERM to the group), then SIGKILL if it lingers."""
    if proc.poll() is None:
        kill_group(proc, signal.SIGTERM)


def purge(queues=("cpu", "gpu")) -> None:
    from courseplatform.celery import app

    with app.connection_for_write() as conn:
        for q in queues:
            try:
                conn.default_channel.queue_purge(q)
            except Exception:
                pass
        # Unacknowledged leftovers of earlier runs would be restored into our queue.
        client = getattr(conn.default_channel, "client", None)
        if client is not None:
            client.delete("unacked", "unacked_index")


def wait_for(predicate, timeout: float, interval: float = 0.2, what: str = "condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
