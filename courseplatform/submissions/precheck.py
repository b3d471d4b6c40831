""""Check before you submit": grade a file on the visible tests only, not as an attempt.

A check is stored as a Submission with ``is_test_run=True`` (never counted: not in the gradebook,
the leaderboard, the attempts or the late policy) and ``via="check"``; the grading task passes
``only_visible=True`` to the engine for it, so the hidden cases are neither run nor listed.

Limits, per student and assignment-independent: the one limit of checks (grading.checks:
settings.CHECKS_PER_WINDOW per settings.CHECK_WINDOW_S, counted in the database, so every web
process and worker agrees), and at most one check waiting or running at a time.
The assignment must be open for the student (released, opened, deadline not past its cut-off);
staff may always check. The page's "Check" button is views.check_view.
"""
from __future__ import annotations

from django.utils import timezone

from courseplatform.grading import checks

from .dispatch import CHECK_VIA
from .models import PENDING_STATES, Assignment, Submission
from .services import accept_upload, standing
from .validation import UploadRejected


def check_refusal(assignment: Assignment, user, is_staff: bool, now=None) -> tuple[str, str] | None:
    """(message, code) when a check is refused now, else None. Codes: policy, queue, rate_limited."""
    now = now or timezone.now()
    if not is_staff:
        st = standing(assignment, user, False, now)
        if not assignment.released or (assignment.opens_at and now < assignment.opens_at) or not st.late.accepted:
            return (st.reason or "This assignment is closed."), "policy"
    mine = Submission.objects.filter(student=user, via=CHECK_VIA)
    if mine.filter(state__in=PENDING_STATES).exists():
        return "Your previous check is still being graded; wait for it to finish.", "queue"
    wait = checks.wait_seconds(mine, now)
    if wait is not None:
        return (f"You have used all {checks.limit()} checks allowed in {checks.window_s() // 60} minutes; "
                f"the next check is possible in {wait} s."), "rate_limited"
    return None


def check(assignment: Assignment, user, upload, *, is_staff: bool) -> Submission:
    """Validate, store and enqueue one check. Raises UploadRejected (code policy, queue,
    rate_limited, or the upload's own codes); on refusal nothing is stored."""

    def admit(now) -> dict:
        # Under accept_upload's per-person lock, so two parallel requests cannot pass the limits.
        refused = check_refusal(assignment, user, is_staff, now)
        if refused:
            raise UploadRejected(*refused)
        return {
            "is_test_run": True, "attempt": 0, "via": CHECK_VIA, "late_days": 0, "penalty_percent": 0.0,
            "max_score": None, "message": "Check: visible tests only, not an attempt.",
        }

    return accept_upload(assignment, user, upload, admit)
