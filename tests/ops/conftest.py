"""Fixtures for the operations tests: real processes (the `make run` launcher, workers, beat) on the
test database and the per-run Redis key prefix, with the fake engine of the submission tests."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

SUBMISSION_TESTS = Path(__file__).resolve().parents[1] / "submissions"
if str(SUBMISSION_TESTS) not in sys.path:
    sys.path.insert(0, str(SUBMISSION_TESTS))

from cp_helpers import write_pack  # noqa: E402
from ops_helpers import Devserver, due_in_days  # noqa: E402


@pytest.fixture(autouse=True)
def _storage(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PACK_STORE = tmp_path / "packs"
    settings.ASSIGNMENTS_DIR = tmp_path / "assignments"


@pytest.fixture
def assignment(course, tmp_path):
    """The tiny pack of the submission tests, on the cpu queue, due in three days."""
    from courseplatform.submissions.sync import sync_pack

    a, _ = sync_pack(course, write_pack(tmp_path / "assignments"))
    a.due_at = due_in_days(3)
    a.save()
    return a


@pytest.fixture
def devservers(tmp_path):
    started: list[Devserver] = []

    def start(name: str, **env) -> Devserver:
        d = Devserver(tmp_path, name, **env)
        started.append(d)
        return d

    yield start
    for d in started:
        try:
            d.stop()
        except Exception:
            pass


