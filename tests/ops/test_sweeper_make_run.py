"""`make run`'s launcher runs beat, and beat's sweeper rescues a submission left `running`.

Real processes: the devserver launcher (gunicorn, a Celery worker and Celery beat) on the test
database and the Redis broker (per-run key prefix), with the fake engine (the first grade of a
KILLME file blocks). The first launcher is SIGKILLed with all its processes while it grades (the
machine died); Redis' visibility_timeout is an hour, so Redis does not redeliver the message. A
second launcher is started, as after a reboot, and nobody touches the submission: its beat sends
the sweeper, which finds the lapsed lease and requeues it, and its worker grades it.
"""
from __future__ import annotations

import time

import pytest
from django.conf import settings

from ops_helpers import process_tree, sigkill_tree, wait_for
from cp_helpers import py
from cp_workers import purge
from courseplatform.submissions import services
from courseplatform.submissions.models import Submission

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True), pytest.mark.timeout(420)]

LEASE = {"GRADING_HEARTBEAT_S": "0.5", "GRADING_LEASE_S": "4", "SWEEP_INTERVAL_S": "1",
         "CELERY_VISIBILITY_TIMEOUT": "3600", "COURSEPLATFORM_GRADE_FUNCTION": "cp_fake_grader.grade"}


def state(pk):
    return Submission.objects.filter(pk=pk).values_list("state", "deliveries", "worker", "generation").first()


def test_submission_of_a_killed_launcher_is_requeued_and_graded_by_the_next(assignment, student, tmp_path, devservers):
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.fail("this test needs the Redis broker (CELERY_BROKER_URL=redis://...)")
    purge(("cpu", "gpu", "ops"))
    sentinel = tmp_path / "first-grade-started"
    env = {**LEASE, "FAKE_GRADER_SENTINEL": sentinel}
    sub = services.submit(assignment, student, py(text="def double(x): return 2*x\n# KILLME SCORE=10\n"), is_staff=False)
    assert state(sub.pk)[0] == "queued"

    first = devservers("first", **env)
    wait_for(sentinel.exists, 180, what="the first launcher's worker to start grading\n" + first.log()[-3000:])
    st, deliveries, worker, generation = wait_for(lambda: state(sub.pk) if state(sub.pk)[0] == "running" else None,
                                                  20, what="running")
    assert deliveries == 1 and worker.startswith("first@") and generation == 1
    # The first launcher runs beat too: proof that `make run` starts it.
    wait_for(lambda: "Sending due task submissions-sweep-stuck" in first.log(), 60, what="beat in the first launcher")

    tree = process_tree(first.proc.pid)
    assert len(tree) >= 5  # launcher, gunicorn master + worker, celery worker + pool child, beat
    sigkill_tree(tree)
    assert first.proc.wait(timeout=10) == -9
    assert state(sub.pk)[0] == "running"  # left behind: the message is unacknowledged in Redis

    second = devservers("second", **env)
    graded = wait_for(lambda: state(sub.pk)[0] in ("graded", "error") and state(sub.pk), 240,
                      what="the second launcher to requeue and grade it\n" + second.log()[-3000:])
    sub.refresh_from_db()
    assert graded[0] == "graded", sub.message
    assert sub.score == 10 and sub.deliveries == 2 and sub.worker.startswith("second@")
    assert sub.generation == 2  # requeued by the sweeper (a Redis redelivery would keep generation 1)
    assert "Sending due task submissions-sweep-stuck" in second.log()
    assert "requeued 1 submission job(s) whose worker stopped responding" in second.log()

    time.sleep(0.5)
    code = second.stop()
    assert code == 0, second.log()[-3000:]
    assert "Stopped." in second.log()
