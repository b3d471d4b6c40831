"""A worker SIGKILLed mid-grade leaves the submission to another worker: never stuck in running.

Real processes: two `celery worker` processes on the Redis broker, the test database, and the
fake engine (cp_fake_grader: the first grade of a KILLME file blocks). The broker's
visibility_timeout is 3 s for these workers: Redis redelivers an unacknowledged message once
it has expired, and a worker restores expired messages when it starts (and periodically).
"""
from __future__ import annotations

import time

import pytest
from django.conf import settings

from cp_helpers import py
from cp_workers import kill_group, purge, start_worker, stop_worker, wait_for
from courseplatform.submissions import services
from courseplatform.submissions.models import Submission

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]


def state(pk):
    return Submission.objects.filter(pk=pk).values_list("state", "deliveries", "worker").first()


def test_worker_killed_mid_grade_is_regraded_by_a_second_worker(assignment, student, tmp_path):
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.fail("this test needs the Redis broker (CELERY_BROKER_URL=redis://...)")
    purge()
    sentinel = tmp_path / "first-grade-started"
    env = {"CELERY_VISIBILITY_TIMEOUT": 3, "COURSEPLATFORM_GRADE_FUNCTION": "cp_fake_grader.grade",
           "FAKE_GRADER_SENTINEL": sentinel}
    sub = services.submit(assignment, student, py(text="def double(x): return 2*x\n# KILLME SCORE=10\n"), is_staff=False)
    assert state(sub.pk)[0] == "queued"

    first = start_worker("first", tmp_path / "first.log", **env)
    second = None
    try:
        wait_for(sentinel.exists, 90, what="the first worker to start grading")
        st, deliveries, worker = wait_for(lambda: state(sub.pk) if state(sub.pk)[0] == "running" else None, 10, what="running")
        assert deliveries == 1 and worker.startswith("first@")
        started = time.monotonic()
        kill_group(first)  # SIGKILL: no ack, no cleanup, nothing saved
        assert first.returncode == -9
        assert state(sub.pk)[0] == "running"
        time.sleep(max(0.0, 3.5 - (time.monotonic() - started)))  # past the visibility timeout

        second = start_worker("second", tmp_path / "second.log", **env)
        wait_for(lambda: state(sub.pk)[0] == "graded", 90, what="the second worker to grade it")
        sub.refresh_from_db()
        assert sub.score == 10 and sub.deliveries == 2 and sub.worker.startswith("second@")
        assert sub.message.startswith("10/10")
    finally:
        kill_group(first)
        if second is not None:
            stop_worker(second)
        print((tmp_path / "first.log").read_text(errors="replace")[-3000:])
        if (tmp_path / "second.log").exists():
            print((tmp_path / "second.log").read_text(errors="replace")[-3000:])
