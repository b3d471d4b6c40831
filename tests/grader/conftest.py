"""Fixtures for the engine's tests: everything runs through the real sandbox (no database)."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from grader_testutil import ATTENTION, FAKE_SECRET, PACKS, UID_BASE, sandbox_processes  # noqa: F401


@pytest.fixture(scope="session", autouse=True)
def _secret_env_and_pool():
    """Secrets in the trusted environment when the sandbox parent starts; pools shut down at the end."""
    from grader import pool

    pool.shutdown()
    saved = {k: os.environ.get(k) for k in ("SECRET_KEY", "DATABASE_URL", "GRADER_TEST_TOKEN", "GRADER_UID_BASE")}
    os.environ["GRADER_UID_BASE"] = str(UID_BASE)  # a range of our own, so other graders on the machine don't count
    os.environ["SECRET_KEY"] = FAKE_SECRET
    os.environ["DATABASE_URL"] = f"postgres://admin:{FAKE_SECRET}@127.0.0.1/x"
    os.environ["GRADER_TEST_TOKEN"] = FAKE_SECRET
    yield
    pool.shutdown()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def grade_src():
    """grade_src(source, pack=ATTENTION, filename=None) -> result dict."""
    from grader.api import grade

    def run(source, pack=ATTENTION, filename=None):
        data = source.encode() if isinstance(source, str) else source
        name = filename or "submission.py"
        return grade(pack, name, data)

    return run


@pytest.fixture
def probe(grade_src):
    """probe(source) -> (result, value returned by probe() or None)."""

    def run(source, **kw):
        res = grade_src(source, pack=PACKS / "probe", **kw)
        value = None
        for note in res["notes"]:
            if note.startswith("PROBE:"):
                value = json.loads(note[len("PROBE:"):])
        return res, value

    return run


@pytest.fixture
def no_leftovers():
    """Assert that no sandbox process survives the test (the pid namespace was torn down)."""
    yield
    deadline = time.monotonic() + 15  # SIGKILLed spinners must still be scheduled to die on a busy machine
    while sandbox_processes() and time.monotonic() < deadline:
        time.sleep(0.05)
    left = sandbox_processes()
    details = []
    for pid in left:
        try:
            status = open(f"/proc/{pid}/status").read()
            details.append(" ".join(l for l in status.splitlines() if l.split(":")[0] in ("Name", "State", "PPid", "Uid", "NSpid")))
        except OSError:
            pass
    assert left == [], details

