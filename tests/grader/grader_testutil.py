"""Shared constants and helpers for the engine's tests."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ATTENTION = ROOT / "assignments" / "attention"
PACKS = Path(__file__).resolve().parent / "packs"
FAKE_SECRET = "h1-fake-secret-0123456789"
# Sandbox uids of this test session: a range of 50,000 of its own (derived from the process id), so
# that a second run on the machine (another checkout, another session) is never counted as ours.
UID_BASE = 1_000_000 + (os.getpid() % 4000) * 50_000
REFERENCE = (ATTENTION / "reference.py").read_text()


def sandbox_processes():
    """Processes on this machine running as one of this test session's sandbox uids."""
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            st = os.stat(f"/proc/{d}")
        except OSError:
            continue
        if UID_BASE <= st.st_uid < UID_BASE + 50000:
            found.append(int(d))
    return found
