"""`python -m courseplatform.devserver` (what `make run` starts): the web server (uvicorn serving
courseplatform.asgi: the pages and the live quizzes' WebSockets), a Celery worker and Celery beat
(the one schedule in settings.CELERY_BEAT_SCHEDULE: the sweeper that requeues submissions whose
worker died or whose message the broker lost, quiz attempts closed, reminders).

A development server: it listens on 127.0.0.1 only, unless HOST says otherwise (HOST=0.0.0.0
makes the demo logins reachable from the network; it says so when it starts).

All run as children in their own process groups; Ctrl-C or SIGTERM here stops them within a few
seconds: uvicorn quickly (SIGINT), beat (SIGTERM), and the Celery worker with a cold shutdown
(SIGQUIT): a grade in progress is cancelled and its message, never acknowledged (the tasks are
acks_late), stays with the broker, so queued work is graded at the next start (Redis restores the
unacknowledged message when the worker disconnects; otherwise the next start's sweeper requeues a
submission whose lease lapsed). What is left after STOP_GRACE_S is killed, so no process outlives
this one. If any child dies, the others are stopped too and the exit status is non-zero; a clean
stop exits 0.

The live quizzes push through the channel layer: without Redis (the embedded default) it is an
in-memory layer, which only one process can use, so the web server then runs one process (pages and
sockets together); with a Redis channel layer (CHANNEL_LAYER_URL, or a redis:// broker) WEB_WORKERS
processes share it.

Environment (read in settings.py, the DEVSERVER_* settings): HOST (127.0.0.1), PORT (8000),
WEB_WORKERS (2; 1 without Redis), WORKER_CONCURRENCY (2), WORKER_QUEUES (cpu,gpu,ops), WORKER_NAME
(embedded), BEAT (1; 0 when another process runs beat for this database: there must be exactly one),
STOP_GRACE_S (10).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "courseplatform.settings")

from django.conf import settings  # noqa: E402  (the settings module is chosen above)

from courseplatform.courses.demo_data import logins_text  # noqa: E402


DEFAULT_HOST = "127.0.0.1"
# How each child is asked to stop: uvicorn's quick shutdown, Celery's cold shutdown (a running
# grade is cancelled, its unacknowledged message left to the next start), beat's normal stop.
STOP_SIGNALS = {"web": signal.SIGINT, "worker": signal.SIGQUIT, "beat": signal.SIGTERM}


def _host() -> str:
    return settings.DEVSERVER_HOST.strip() or DEFAULT_HOST


def _commands() -> dict[str, list[str]]:
    host, port = _host(), settings.DEVSERVER_PORT
    py = sys.executable
    commands = {
        "web": [
            py, "-m", "uvicorn", "courseplatform.asgi:application",
            "--host", host, "--port", str(port),
            "--workers", _web_workers(),
            "--ws", "websockets",
            "--lifespan", "off",
            "--timeout-graceful-shutdown", "10",
        ],
        "worker": [
            py, "-m", "celery", "-A", "courseplatform", "worker",
            "-Q", settings.DEVSERVER_WORKER_QUEUES,
            "-c", str(settings.DEVSERVER_WORKER_CONCURRENCY),
            "-l", "INFO",
            "-n", f"{settings.DEVSERVER_WORKER_NAME}@%h",
        ],
    }
    if settings.DEVSERVER_BEAT:
        commands["beat"] = [py, "-m", "celery", "-A", "courseplatform", "beat", "-l", "INFO"]
    return commands


def _web_workers() -> str:
    """In-memory channel layer (no Redis): one process, or a push would miss the sockets of the others."""
    return str(settings.DEVSERVER_WEB_WORKERS) if settings.CHANNEL_LAYER_URL else "1"


def _accepts(host: str, port: str) -> bool:
    """Whether the web server accepts connections yet (a wildcard bind is asked on the loopback)."""
    host = "127.0.0.1" if host in ("", "0.0.0.0", "::", "[::]") else host.strip("[]")
    try:
        with socket.create_connection((host, int(port)), timeout=0.5):
            return True
    except OSError:
        return False


def main() -> int:
    port, grace = settings.DEVSERVER_PORT, settings.DEVSERVER_STOP_GRACE_S
    children: dict[str, subprocess.Popen] = {}
    stopping = {"signal": None}

    def on_signal(signum, _frame):
        stopping["signal"] = signum

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    for name, cmd in _commands().items():
        # Own session: a Ctrl-C in the terminal reaches only us, and we stop the children in order.
        children[name] = subprocess.Popen(cmd, start_new_session=True)

    pids = ", ".join(f"{name} pid {p.pid}" for name, p in children.items())
    print(f"Starting {', '.join(children)} ({pids}); waiting for the web server on port {port}...", flush=True)

    status = 0
    started, announced, last_note = time.monotonic(), False, time.monotonic()
    while stopping["signal"] is None:
        dead = [n for n, p in children.items() if p.poll() is not None]
        if dead:
            print(f"\n{', '.join(dead)} exited (status {children[dead[0]].returncode}); stopping the rest.", flush=True)
            status = 1
            break
        if not announced and _accepts(_host(), port):
            # Once, when the site answers: the address and the logins, where the user is looking.
            announced = True
            host = _host()
            where = f"http://localhost:{port}/" if host in ("127.0.0.1", "localhost") else f"http://{host}:{port}/"
            exposed = ("" if host in ("127.0.0.1", "localhost", "::1") else
                       f"\nListening on {host}: other machines on the network can reach this development server "
                       "and its demo logins.")
            print(f"\ncourseplatform is up: {where}  ({pids}){exposed}\n{logins_text()}\n"
                  "Press Ctrl-C to stop.\n", flush=True)
        elif not announced and time.monotonic() - last_note >= 5:
            last_note = time.monotonic()
            print(f"  still starting ({time.monotonic() - started:.0f} s): the web server loads Django "
                  "and its workers...", flush=True)
        time.sleep(0.3)
    else:
        print("\nStopping the web server, the worker and beat...", flush=True)

    for name, p in children.items():
        if p.poll() is None:
            p.send_signal(STOP_SIGNALS.get(name, signal.SIGTERM))  # the main process stops its own workers/pool
    deadline = time.monotonic() + grace
    for name, p in children.items():
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"{name} did not stop within {grace:.0f}s; killing it.", flush=True)
            status = status or 1
    for p in children.values():
        # Whatever is left in a child's process group (pool processes) goes too.
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if p.poll() is None:
            p.wait()
    print("Stopped.", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
