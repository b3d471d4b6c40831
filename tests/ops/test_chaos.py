"""The short chaos run (bench/chaos.py): a surge of uploads through the web host's API while a
worker host is SIGKILLed three times and the broker (a private redis-server without persistence)
restarts once. Nothing accepted may be lost, stuck or graded inconsistently, and after every fault
grading resumes. The full run (300 submissions, 50 kills, link cut, PostgreSQL restart) is
`make bench-chaos`."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def test_short_chaos_run_loses_nothing():
    env = dict(os.environ)
    env.pop("CELERY_BROKER_KEYPREFIX", None)  # the run has its own broker and prefix
    r = subprocess.run(
        [sys.executable, "bench/chaos.py", "--broker", "redis", "--submissions", "30", "--students", "10",
         "--kills", "3", "--cut-s", "0", "--no-postgres-restart", "--no-own-postgres", "--surge-s", "40",
         "--drain-s", "240", "--grade-s", "0.2", "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=840)
    out = r.stdout + r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("CHAOS-REPORT ")]
    assert lines, out[-5000:]
    rep = json.loads(lines[-1][len("CHAOS-REPORT "):])
    assert rep["accepted"] == 30 and not rep["refused"], out[-3000:]
    assert rep["lost"] == 0 and rep["stuck"] == 0 and rep["inconsistent"] == 0, out[-3000:]
    assert rep["graded"] + rep["error"] == 30
    faults = [what for what, _ in rep["recovery"]]
    assert sum(w.startswith("SIGKILL") for w in faults) == 3 and any("restart the broker" in w for w in faults)
    assert all(t is not None for _, t in rep["recovery"]), rep["recovery"]  # grading resumed after each fault
    assert r.returncode == 0, out[-3000:]
