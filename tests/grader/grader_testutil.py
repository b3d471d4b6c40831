"""Shared constants and helpers for the engine's tests."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ATTENTION = ROOT / "assignments" / "attention"
PACKS = Path(__file__).resolve().parent / "packs"
FAKE_SECRET = "h1-fake-secret-0123456789"
UID_BASE = 300000
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
