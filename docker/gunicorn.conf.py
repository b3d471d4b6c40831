"""gunicorn settings of the production web server (docker/Dockerfile: `-c docker/gunicorn.conf.py`).
Deployment configuration, read by gunicorn's master before Django starts.

Metrics: with several worker processes, each keeps its request metrics in files under
PROMETHEUS_MULTIPROC_DIR and /metrics sums them (courseplatform/ops/views.py). The folder is emptied
when the server starts (stale files of an earlier run would be summed too), and a worker's live
gauges are dropped when it exits."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

# No runtime control socket (gunicornc): the container's user has no writable home for it, and the
# deployment scales and reloads through compose, not through a socket inside the container.
control_socket_disable = True


def on_starting(server):
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        Path(folder).mkdir(parents=True, exist_ok=True)


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
