"""Quiz code answers and quiz checks go through the one grading path (courseplatform/grading), so a
worker killed mid-grade or a message the broker lost never leaves them "pending" for ever.

Real processes: `celery worker` processes on the Redis broker (per-run key prefix) and the test
database, with the fake engine of the submission tests (cp_fake_grader: the first grade of a KILLME
answer blocks). Redis' visibility_timeout is an hour, so Redis does not redeliver a dead worker's
message within the test: the sweeper has to find the lapsed lease (or the lost message) and requeue.
"""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from cp_workers import kill_group, purge, start_worker, stop_worker
from ops_helpers import wait_for
from courseplatform.grading import sweeper
from courseplatform.grading.models import GradingJob
from courseplatform.quizzes import bank, codepacks, services
from courseplatform.quizzes.models import AttemptQuestion, CodeCheck
from courseplatform.quizzes.sync import apply_bank

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[2]
PACK = "code/stable_softmax"
BANK = ('[quiz]\nslug = "code"\ntitle = "Code"\nreview = "immediately"\npublished = true\n\n[[question]]\n'
        f'id = "softmax"\ntype = "code"\npoints = 3\npack = "{PACK}"\nfilename = "softmax.py"\ntext = "Stable softmax."\n')
WORKER_ENV = {"CELERY_VISIBILITY_TIMEOUT": 3600, "COURSEPLATFORM_GRADE_FUNCTION": "cp_fake_grader.grade",
              "GRADING_HEARTBEAT_S": 0.5}


@pytest.fixture
def code_item(course, student, settings, tmp_path):
    """An open attempt of a quiz with one code question, its pack in the trusted store."""
    import shutil

    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.fail("this test needs the Redis broker (CELERY_BROKER_URL=redis://...)")
    shutil.copytree(REPO / "assignments" / "quizzes" / PACK, tmp_path / "assignments" / "quizzes" / PACK)
    codepacks.publish(PACK)
    quiz = apply_bank(course, bank.parse_bank(BANK, where="code.toml"), source_path="quizzes/code.toml")["quiz_obj"]
    attempt = services.start_attempt(quiz, student)
    purge(("cpu", "gpu", "ops"))
    return attempt.items.get()


def queue_work(kind: str, item, student, code: str) -> int:
    """Submit the attempt with this answer ("quiz-answer") or ask for a check of it ("quiz-check");
    returns the graded object's id. The message is sent when the transaction commits."""
    if kind == "quiz-answer":
        services.save_answer(item.attempt_id, item.pk, {"code": [code]})
        services.submit_attempt(item.attempt_id)
        return item.pk
    return services.request_check(item.attempt_id, item.pk, student, code).pk


def outcome(kind: str, object_id: int):
    """(graded object's state, its score or passed count, the attempt's pending count)."""
    if kind == "quiz-answer":
        item = AttemptQuestion.objects.select_related("attempt").get(pk=object_id)
        return item.grading_state, item.score, item.attempt.pending
    check = CodeCheck.objects.get(pk=object_id)
    return check.state, check.passed, None


def job_of(kind: str, object_id: int) -> GradingJob:
    return GradingJob.objects.get(kind=kind, object_id=object_id)


def finished(kind: str, object_id: int):
    state = outcome(kind, object_id)
    return state if state[0] in ("graded", "done", "error") else None


@pytest.mark.parametrize("kind", ["quiz-answer", "quiz-check"])
def test_a_worker_killed_mid_grade_is_swept_and_graded_by_another(kind, code_item, student, tmp_path, settings):
    sentinel = tmp_path / "first-grade-started"
    env = {**WORKER_ENV, "FAKE_GRADER_SENTINEL": sentinel}
    object_id = queue_work(kind, code_item, student, "def softmax(x): return x\n# KILLME SCORE=10\n")
    assert job_of(kind, object_id).state == "queued"

    first = start_worker("first", tmp_path / "first.log", **env)
    second = None
    try:
        wait_for(sentinel.exists, 120, what="the first worker to start grading")
        job = wait_for(lambda: (j := job_of(kind, object_id)).state == "running" and j, 20, what="running")
        assert job.deliveries == 1 and job.worker.startswith("first@") and job.generation == 1
        kill_group(first)  # SIGKILL: no ack, no cleanup, nothing saved
        assert first.returncode == -9
        assert outcome(kind, object_id)[0] == "pending"

        # The lease lapses (no heartbeat from a dead worker); the sweeper requeues the job.
        settings.GRADING_LEASE_S = 1.5
        wait_for(lambda: sweeper.lapsed_leases(sweeper.KINDS[kind]), 30, what="the lease to lapse")
        assert sweeper.recover()["lapsed"] == 1
        job = job_of(kind, object_id)
        assert job.state == "queued" and job.generation == 2 and "stopped responding" in job.message

        second = start_worker("second", tmp_path / "second.log", **env)
        state = wait_for(lambda: finished(kind, object_id), 120, what="the second worker to grade it")
    finally:
        kill_group(first)
        if second is not None:
            stop_worker(second)
        for log in ("first.log", "second.log"):
            if (tmp_path / log).exists():
                print((tmp_path / log).read_text(errors="replace")[-3000:])
    job = job_of(kind, object_id)
    assert job.state == "graded" and job.deliveries == 2 and job.worker.startswith("second@"), job.message
    if kind == "quiz-answer":
        assert state == ("graded", 3.0, 0)  # 10/10 of the fake engine = all 3 points; nothing pending
    else:
        assert state == ("done", 1, None)  # the visible test only


@pytest.mark.parametrize("kind", ["quiz-answer", "quiz-check"])
def test_a_message_the_broker_lost_is_sent_again_by_the_sweeper(kind, code_item, student, tmp_path):
    object_id = queue_work(kind, code_item, student, "def softmax(x): return x\n# SCORE=6\n")
    job = job_of(kind, object_id)
    assert job.state == "queued"
    assert sweeper.lost_messages() == {}  # its message waits in the queue (and it is within the grace)
    purge(("cpu",))  # the broker lost it (a Redis restart without persistence)
    GradingJob.objects.filter(pk=job.pk).update(
        queued_at=timezone.now() - timedelta(seconds=sweeper.LOST_GRACE_S + 5))
    assert sweeper.lost_messages() == {kind: [job.pk]}
    assert sweeper.recover()["resent"] == 1
    job.refresh_from_db()
    assert job.state == "queued" and job.generation == 2
    assert sweeper.lost_messages() == {}  # the new message is in the queue

    worker = start_worker("only", tmp_path / "only.log", **WORKER_ENV)
    try:
        state = wait_for(lambda: finished(kind, object_id), 120, what="the worker to grade it")
    finally:
        stop_worker(worker)
        print((tmp_path / "only.log").read_text(errors="replace")[-3000:])
    job.refresh_from_db()
    assert job.state == "graded" and job.deliveries == 1
    assert state == (("graded", 3.0 * 6 / 10, 0) if kind == "quiz-answer" else ("done", 1, None))
