"""Celery tasks of the quizzes app: grade code answers and checks with the engine, close overdue
attempts.

A code answer ("quiz-answer") and a "Check" of one ("quiz-check") are kinds of the one grading path
(courseplatform/grading): the same claim, lease and heartbeat, retries for infrastructure faults only,
sweeper (a worker killed mid-grade, a message the broker lost) and requeue as assignment
submissions; their lease record is a grading.GradingJob. What is particular to them is here: the
engine's input (the answer's code, the pack of the question) and how a result is saved.
"""
from __future__ import annotations

import logging

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from courseplatform.grading.jobs import EngineCall, Gone, InfrastructureError, Kind
from courseplatform.grading.models import GradingJob, State
from courseplatform.grading.worker import grading_task

from . import dispatch
from .codepacks import trusted_dir
from .models import CODE_PENDING, Attempt, AttemptQuestion, CodeCheck
from .services import close_overdue, update_total

logger = logging.getLogger(__name__)


def _summarise(result: dict) -> str:
    lines = [result.get("message", "")]
    for t in result.get("tests", []):
        mark = "✓" if t.get("status") == "passed" else "✗"
        msg = t.get("message", "") if t.get("visible", True) else ("hidden test" if t.get("status") != "passed" else "")
        lines.append(f"{mark} {t.get('name')}: {t.get('score', 0):g}/{t.get('max_score', 0):g}" + (f" — {msg}" if msg else ""))
    return "\n".join(line for line in lines if line)


def _pack_dir(snapshot: dict):
    try:
        return trusted_dir(snapshot["pack"])
    except (KeyError, ValueError, OSError) as exc:
        raise InfrastructureError(f"the pack of this question is not in trusted storage: {exc}") from exc


def _lock_running(job, generation: int):
    """The job's row, locked, while this generation still owns it (else None: stale)."""
    return GradingJob.objects.select_for_update().filter(pk=job.pk, generation=generation, state=State.RUNNING).first()


def _finish(job, ok: bool, message: str) -> None:
    GradingJob.objects.filter(pk=job.pk).update(state=State.GRADED if ok else State.ERROR,
                                                finished_at=timezone.now(), message=message[:500])


class QuizAnswerJob(Kind):
    """The code answer of a submitted attempt (GradingJob.object_id = AttemptQuestion)."""

    name = dispatch.QUIZ_ANSWER_KIND
    task_name = dispatch.GRADE_CODE_ANSWER
    infrastructure_message = ("The grading engine could not grade this answer ({error}); staff have been "
                              "notified. Your answer is kept.")

    def call(self, job) -> EngineCall:
        item = AttemptQuestion.objects.filter(pk=job.object_id).first()
        if item is None or item.grading_state != CODE_PENDING or not item.response:
            raise Gone("The answer no longer waits for grading.")
        snap = item.snapshot
        return EngineCall(_pack_dir(snap), snap.get("filename", "solution.py"),
                          item.response.get("code", "").encode("utf-8"))

    def save(self, job, generation: int, result: dict) -> str:
        with transaction.atomic():
            if _lock_running(job, generation) is None:
                return "stale"  # requeued meanwhile (a regrade): a newer generation owns it
            item = AttemptQuestion.objects.filter(pk=job.object_id).first()
            if item is None:
                return "gone"
            attempt = Attempt.objects.select_for_update().get(pk=item.attempt_id)
            item = AttemptQuestion.objects.get(pk=item.pk)
            max_score = float(result.get("max_score") or 0) or 1.0
            fraction = max(0.0, min(1.0, float(result.get("score") or 0) / max_score))
            item.score = round(fraction * item.max_score, 6)
            item.grading_state = "graded" if result.get("status") == "graded" else "error"
            item.feedback = _summarise(result)
            item.result = {k: result.get(k) for k in ("score", "max_score", "status", "message", "tests", "notes")}
            item.save(update_fields=["score", "grading_state", "feedback", "result"])
            update_total(attempt)
            _finish(job, item.grading_state == "graded", str(result.get("message") or ""))
        return "saved"

    def fail(self, job, message: str) -> None:
        with transaction.atomic():
            item = AttemptQuestion.objects.filter(pk=job.object_id).first()
            if item is None:
                return
            attempt = Attempt.objects.select_for_update().get(pk=item.attempt_id)
            item = AttemptQuestion.objects.get(pk=item.pk)
            if item.grading_state == CODE_PENDING and item.score is not None:
                # A regrade the engine could not run: the previous score and feedback stand.
                item.grading_state = "graded"
                item.save(update_fields=["grading_state"])
            else:
                item.grading_state, item.score, item.feedback = "error", 0.0, message
                item.save(update_fields=["grading_state", "score", "feedback"])
            update_total(attempt)


class QuizCheckJob(Kind):
    """A "Check" of a code answer during an attempt: the visible tests only, no score kept
    (GradingJob.object_id = CodeCheck)."""

    name = dispatch.QUIZ_CHECK_KIND
    task_name = dispatch.RUN_CODE_CHECK
    infrastructure_message = "The grading engine could not run the check ({error}); try again later."

    def call(self, job) -> EngineCall:
        check = CodeCheck.objects.select_related("item").filter(pk=job.object_id).first()
        if check is None or check.state != CodeCheck.State.PENDING:
            raise Gone("The check no longer waits for a result.")
        snap = check.item.snapshot
        return EngineCall(_pack_dir(snap), snap.get("filename", "solution.py"), check.code.encode("utf-8"),
                          only_visible=True)

    def save(self, job, generation: int, result: dict) -> str:
        with transaction.atomic():
            if _lock_running(job, generation) is None:
                return "stale"
            check = CodeCheck.objects.select_for_update().filter(pk=job.object_id).first()
            if check is None:
                return "gone"
            tests = [t for t in result.get("tests", []) if t.get("visible", True)]
            check.passed = sum(1 for t in tests if t.get("status") == "passed")
            check.total = len(tests)
            check.feedback = _summarise(dict(result, tests=tests))
            check.state = CodeCheck.State.DONE if result.get("status") == "graded" else CodeCheck.State.ERROR
            check.save(update_fields=["passed", "total", "feedback", "state"])
            _finish(job, check.state == CodeCheck.State.DONE, str(result.get("message") or ""))
        return "saved"

    def fail(self, job, message: str) -> None:
        CodeCheck.objects.filter(pk=job.object_id).update(state=CodeCheck.State.ERROR, feedback=message)


grade_code_answer = grading_task(QuizAnswerJob())
run_code_check = grading_task(QuizCheckJob())


@shared_task
def close_overdue_attempts() -> int:
    return close_overdue()
