"""Diagnostic task: proves that the broker and a worker are alive (used by the embedded-mode test)."""
from __future__ import annotations

import os
import socket
from pathlib import Path

from celery import shared_task


@shared_task(name="courses.ping", ignore_result=True)
def ping(path: str, token: str) -> str:
    """Write `token pid hostname` to `path` (atomically) and return the token."""
    target = Path(path)
    tmp = target.with_suffix(target.suffix + ".tmp")
    tmp.write_text(f"{token} {os.getpid()} {socket.gethostname()}\n")
    tmp.replace(target)
    return token
