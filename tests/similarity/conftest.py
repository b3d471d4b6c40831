"""Fixtures for the similarity app: the real attention pack synced into a course, a class of
students, submissions stored as the site stores them, and Celery run inline."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def eager_celery():
    from courseplatform.celery import app

    old = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    yield app
    app.conf.task_always_eager, app.conf.task_eager_propagates = old


@pytest.fixture
def attention(course, settings, tmp_path):
    from courseplatform.submissions.sync import sync_pack

    settings.ASSIGNMENTS_DIR = ROOT / "assignments"
    assignment, _ = sync_pack(course, ROOT / "assignments" / "attention")
    return assignment


@pytest.fixture
def enrol(course, make_user):
    from courseplatform.courses.models import Membership

    def make(username, role="student", **extra):
        user = make_user(username, **extra)
        Membership.objects.create(course=course, user=user, role=role)
        return user

    return make


@pytest.fixture
def submit(settings):
    """submit(assignment, user, name, data) -> a graded Submission whose file is stored by hash."""
    from courseplatform.submissions.models import Submission

    def make(assignment, user, name, data: bytes, **extra):
        sha = hashlib.sha256(data).hexdigest()
        kind = name.rsplit(".", 1)[-1]
        rel = f"submissions/{sha[:2]}/{sha}.{kind}"
        path = Path(settings.MEDIA_ROOT) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        attempt = Submission.objects.filter(assignment=assignment, student=user).count() + 1
        return Submission.objects.create(assignment=assignment, student=user, sha256=sha, blob=rel,
                                         original_name=name, kind=kind, size=len(data), state="graded",
                                         score=10, raw_score=10, max_score=10, attempt=attempt, **extra)

    return make
