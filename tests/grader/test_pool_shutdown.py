"""A worker told to stop while its warm pool is still starting (the sandbox parent imports torch:
half a minute on a loaded machine) stops at once: shutdown cancels the start instead of waiting
for it behind the pools' lock (a Celery worker's warm shutdown hung on exactly that)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])

SCRIPT = r"""
import json, threading, time
from grader.sandbox import pool

errors = []

def start():
    try:
        pool.start("cpu", ("torch",))
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")

thread = threading.Thread(target=start)
thread.start()
deadline = time.monotonic() + 30
while time.monotonic() < deadline and not any(z.proc for z in list(pool._starting.values())):
    time.sleep(0.01)
starting = list(pool._starting.values())
t0 = time.monotonic()
pool.shutdown()
took = time.monotonic() - t0
thread.join(30)
print(json.dumps({"starting": len(starting), "took": took, "thread_alive": thread.is_alive(), "errors": errors,
                  "parent_exit": [z.proc.poll() for z in starting], "pools": len(pool._pools),
                  "still_starting": len(pool._starting)}))
"""


def test_shutdown_cancels_a_pool_that_is_still_starting(tmp_path):
    # A sandbox parent that never says hello (as one still importing torch): without the cancel,
    # shutdown() would wait for its 180 s start-up timeout.
    slow = tmp_path / "slow-python"
    slow.write_text("#!/bin/sh\nexec sleep 600\n")
    slow.chmod(0o755)
    env = {**os.environ, "GRADER_PYTHON": str(slow), "PYTHONPATH": ROOT}
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    facts = json.loads(out.stdout.strip().splitlines()[-1])
    assert facts["starting"] == 1  # the start was in progress when shutdown came
    assert facts["took"] < 20, facts  # not the start-up timeout (180 s)
    assert not facts["thread_alive"], facts
    assert facts["parent_exit"][0] is not None, facts  # the half-started parent was killed
    assert facts["pools"] == 0 and facts["still_starting"] == 0, facts
    assert len(facts["errors"]) == 1 and "SandboxUnavailable" in facts["errors"][0], facts


def test_a_second_caller_gets_the_pool_the_first_one_started(tmp_path):
    """Two threads asking for one pool at once start one sandbox parent, not two."""
    script = r"""
import json, threading
from grader.sandbox import pool
got = []
threads = [threading.Thread(target=lambda: got.append(pool.start("cpu", ("torch",)))) for _ in range(3)]
for t in threads: t.start()
for t in threads: t.join(300)
print(json.dumps({"distinct": len({id(z) for z in got}), "n": len(got), "pools": len(pool._pools)}))
pool.shutdown()
"""
    env = {**os.environ, "PYTHONPATH": ROOT}
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    facts = json.loads(out.stdout.strip().splitlines()[-1])
    assert facts == {"distinct": 1, "n": 3, "pools": 1}, facts
