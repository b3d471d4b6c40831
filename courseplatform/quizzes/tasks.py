"""Celery tasks: grade code answers with the engine, close overdue attempts."""
from __future__ import annotations

import logging

from celery import shared_task
from django.db import transaction

from grader.api import grade
from grader.errors import GraderError

from .codepacks import trusted_dir
from .models import Attempt, AttemptQuestion, CodeCheck
from .services import close_overdue, update_total

logger = logging.getLogger(__name__)


def _summarise(result: dict) -> str:
    lines = [result.get("message", "")]
    for t in result.get("tests", []):
        mark = "✓" if t.get("status") == "passed" else "✗"
        msg = t.get("message", "") if t.get("visible", True) else ("hidden test" if t.get("status") != "passed" else "")
        lines.append(f"{mark} {t.get('name')}: {t.get('score', 0):g}/{t.get('max_score', 0):g}" + (f" — {msg}" if msg else ""))
    return "\n".join(line for line in lines if line)


def grade_code_item(item_id: int) -> None:
    """Grade one code answer synchronously (the task body; also used by tests and commands)."""
    item = AttemptQuestion.objects.select_related("attempt").get(pk=item_id)
    if item.grading_state != "pending" or not item.response:
        return
    snap = item.snapshot
    code = item.response.get("code", "")
    result = grade(trusted_dir(snap["pack"]), snap.get("filename", "solution.py"), code.encode("utf-8"))
    with transaction.atomic():
        attempt = Attempt.objects.select_for_update().get(pk=item.attempt_id)
        item = AttemptQuestion.objects.get(pk=item_id)
        if item.grading_state != "pending":  # regraded meanwhile: a newer task owns it
            return
        max_score = float(result.get("max_score") or 0) or 1.0
        fraction = max(0.0, min(1.0, float(result.get("score") or 0) / max_score))
        item.score = round(fraction * item.max_score, 6)
        item.grading_state = "graded" if result.get("status") == "graded" else "error"
        item.feedback = _summarise(result)
        item.result = {k: result.get(k) for k in ("score", "max_score", "status", "message", "tests", "notes")}
        item.save(update_fields=["score", "grading_state", "feedback", "result"])
        update_total(attempt)


@shared_task(bind=True, acks_late=True, max_retries=3, default_retry_delay=10)
def grade_code_answer(self, item_id: int) -> None:
    try:
        grade_code_item(item_id)
    except GraderError as exc:  # infrastructure fault only; a normal result is never retried
        logger.warning("grading quiz code answer %s failed: %s", item_id, exc)
        try:
            raise self.retry(exc=exc)
        except GraderError:
            _mark_error(item_id, "The grading engine is unavailable; staff have been notified. Your answer is kept.")
            raise


def run_check(check_id: int) -> None:
    """Grade a "Check" on the visible tests only (the task body; also used by tests). No score is kept."""
    check = CodeCheck.objects.select_related("item").get(pk=check_id)
    if check.state != CodeCheck.State.PENDING:
        return
    snap = check.item.snapshot
    result = grade(trusted_dir(snap["pack"]), snap.get("filename", "solution.py"), check.code.encode("utf-8"),
                   only_visible=True)
    tests = [t for t in result.get("tests", []) if t.get("visible", True)]
    check.passed = sum(1 for t in tests if t.get("status") == "passed")
    check.total = len(tests)
    check.feedback = _summarise(dict(result, tests=tests))
    check.state = CodeCheck.State.DONE if result.get("status") == "graded" else CodeCheck.State.ERROR
    check.save(update_fields=["passed", "total", "feedback", "state"])


@shared_task(bind=True, acks_late=True, max_retries=2, default_retry_delay=5)
def run_code_check(self, check_id: int) -> None:
    try:
        run_check(check_id)
    except GraderError as exc:
        try:
            raise self.retry(exc=exc)
        except GraderError:
            CodeCheck.objects.filter(pk=check_id).update(
                state=CodeCheck.State.ERROR, feedback="The grading engine is unavailable; try again later.")
            raise


def _mark_error(item_id: int, message: str) -> None:
    with transaction.atomic():
        item = AttemptQuestion.objects.select_related("attempt").get(pk=item_id)
        attempt = Attempt.objects.select_for_update().get(pk=item.attempt_id)
        if item.grading_state == "pending" and item.score is not None:
            # A regrade the engine could not run: the previous score and feedback stand.
            item.grading_state = "graded"
            item.save(update_fields=["grading_state"])
        else:
            item.grading_state, item.score, item.feedback = "error", 0.0, message
            item.save(update_fields=["grading_state", "score", "feedback"])
        update_total(attempt)


@shared_task
def close_overdue_attempts() -> int:
    return close_overdue()
