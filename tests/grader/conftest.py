"""Fixtures for the engine's tests: everything runs through the real sandbox (no database)."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from grader_testutil import ATTENTION, FAKE_SECRET, PACKS, UID_BASE, sandbox_processes  # noqa: F401


@pytest.fixture(scope="session", autouse=True)
def _grader_pool():
    """The engine tests' pool starts with this session's sandbox uid range; shut down at the end."""
    from grader.sandbox import pool

    pool.shutdown()
    saved = os.environ.get("GRADER_UID_BASE")
    os.environ["GRADER_UID_BASE"] = str(UID_BASE)  # a range of our own, so other graders on the machine don't count
    yield
    pool.shutdown()
    if saved is None:
        os.environ.pop("GRADER_UID_BASE", None)
    else:
        os.environ["GRADER_UID_BASE"] = saved


@pytest.fixture(autouse=True)
def _secret_env(monkeypatch):
    """Secrets in the trusted process's environment during each engine test (the sandbox must never
    see them). Per test: later tests (and the processes they start) get the real environment back."""
    monkeypatch.setenv("SECRET_KEY", FAKE_SECRET)
    monkeypatch.setenv("DATABASE_URL", f"postgres://admin:{FAKE_SECRET}@127.0.0.1/x")
    monkeypatch.setenv("GRADER_TEST_TOKEN", FAKE_SECRET)


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

