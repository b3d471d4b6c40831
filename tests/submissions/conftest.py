"""Fixtures for the submission tests: a small pack, an assignment, eager Celery with a fake engine."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

import cp_fake_grader
from cp_helpers import write_pack


@pytest.fixture(autouse=True)
def _storage(settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast fixtures
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PACK_STORE = tmp_path / "packs"
    settings.ASSIGNMENTS_DIR = tmp_path / "assignments"
    settings.SUBMISSION_MAX_BYTES = 64 * 1024


@pytest.fixture
def eager(monkeypatch):
    """Celery runs tasks inline; the engine is the fake one."""
    from courseplatform.celery import app
    from courseplatform.grading import engine, jobs

    monkeypatch.setattr(engine, "grade_function", lambda: cp_fake_grader.grade)
    # Tests run inside a transaction that never commits: send at once instead of on commit
    # (test_grading.py's test_task_is_sent_on_commit_and_routed_to_the_pack_queue checks the
    # on_commit dispatch itself).
    monkeypatch.setattr(jobs, "on_commit", lambda fn: fn())
    old = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield app
    app.conf.task_always_eager, app.conf.task_eager_propagates = old


@pytest.fixture
def pack_dir(tmp_path):
    return write_pack(tmp_path / "assignments")


@pytest.fixture
def assignment(course, pack_dir):
    from courseplatform.submissions.sync import sync_pack

    a, _ = sync_pack(course, pack_dir)
    a.due_at = timezone.now() + timedelta(days=3)
    a.save()
    return a


@pytest.fixture
def blobs(settings):
    def count():
        root = Path(settings.MEDIA_ROOT) / "submissions"
        return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []

    return count
