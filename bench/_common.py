"""What the load benches share: ports, the servers' environment, a fresh bench database, waiting
for a server, percentiles, a process tree's memory and the machine's load.

The benches are scripts (`python bench/live_quiz.py`), so they import this as `_common` (their own
folder is on the path); tests import it as `bench._common`.
"""
from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, what: str, timeout: float = 90, host: str = "127.0.0.1") -> None:
    """Until something accepts connections on host:port; SystemExit naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{what} did not start within {timeout:.0f} s")


def pct(values, q: float) -> float:
    """The q-quantile by nearest rank (NaN for no values)."""
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))] if v else float("nan")


def server_env(pg: str, db_name: str) -> dict:
    """The environment of the bench's servers (gunicorn, uvicorn) and its setup commands: production
    settings (DEBUG=0, the static manifest) on loopback, the bench's own database, the Redis of
    BENCH_BROKER (the broker and, keyed by a prefix of this run, the channel layer)."""
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": f"{pg}/{db_name}", "DEBUG": "0", "SECRET_KEY": "bench-" + secrets.token_hex(24),
        "ALLOWED_HOSTS": "127.0.0.1,localhost", "SECURE_SSL_REDIRECT": "0", "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0", "SECURE_HSTS_SECONDS": "0", "LOG_LEVEL": "WARNING",
        "CELERY_BROKER_URL": os.environ.get("BENCH_BROKER", "redis://127.0.0.1:6379/3"),
        "CHANNEL_LAYER_PREFIX": f"cp-{db_name}-{secrets.token_hex(4)}",
        "DJANGO_SETTINGS_MODULE": "courseplatform.settings", "DB_CONN_MAX_AGE": "600",
        "STATIC_ROOT": str(Path(os.environ.get("TMPDIR", "/tmp")) / f"{db_name}_static"),
        "PYTHONPATH": str(REPO),
    })
    return env


def fresh_database(pg: str, db_name: str, env: dict, static: bool = False) -> None:
    """Drop and create ``db_name``, migrate it (and collect the static files: pages under DEBUG=0
    need whitenoise's manifest), then set Django up in this process on it."""
    import psycopg

    with psycopg.connect(f"{pg}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {db_name}")
    subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO, env=env, check=True)
    if static:
        subprocess.run([PY, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=REPO, env=env, check=True)
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "CELERY_BROKER_URL",
                                           "CHANNEL_LAYER_PREFIX", "DJANGO_SETTINGS_MODULE", "SECURE_SSL_REDIRECT",
                                           "STATIC_ROOT")})
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    import django

    django.setup()


def drop_database(pg: str, db_name: str) -> None:
    import psycopg
    from django.db import connections

    connections.close_all()
    with psycopg.connect(f"{pg}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {db_name} WITH (FORCE)")


def gunicorn(port: int, env: dict, workers: int, threads: int) -> subprocess.Popen:
    """The site's WSGI server as in production (gthread workers), in a process group of its own."""
    return subprocess.Popen(
        [str(Path(PY).with_name("gunicorn")), "courseplatform.wsgi", "-b", f"127.0.0.1:{port}", "-w", str(workers),
         "-k", "gthread", "--threads", str(threads), "--timeout", "120", "--log-level", "warning"],
        cwd=REPO, env=env, start_new_session=True)


def stop(proc: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM to the process group, SIGKILL after ``timeout``."""
    import signal

    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=timeout)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, MiB (0 when it is gone)."""
    import psutil

    try:
        p = psutil.Process(pid)
        return sum(x.memory_info().rss for x in [p, *p.children(recursive=True)]) / 2**20
    except psutil.NoSuchProcess:
        return 0.0


def load_line(before: tuple[float, float, float], after: tuple[float, float, float]) -> str:
    """The machine's size and load average (os.getloadavg) at a run's start and end."""
    f = "/".join
    return (f"machine: {os.cpu_count()} CPUs, load average (1/5/15 min) {f(f'{x:.2f}' for x in before)} at the start, "
            f"{f(f'{x:.2f}' for x in after)} at the end (other work on the machine included)")
