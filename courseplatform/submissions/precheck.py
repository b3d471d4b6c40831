""""Check before you submit": grade a file on the visible tests only, not as an attempt.

A check is stored as a Submission with ``is_test_run=True`` (never counted: not in the gradebook,
the leaderboard, the attempts or the late policy) and ``via="check"``; the grading task passes
``only_visible=True`` to the engine for it, so the hidden cases are neither run nor listed.

Limits, per student and assignment-independent: the one limit of checks (grading.checks:
settings.CHECKS_PER_WINDOW per settings.CHECK_WINDOW_S, counted in the database, so every web
process and worker agrees), and at most one check waiting or running at a time.
The assignment must be open for the student (released, opened, deadline not past its cut-off);
staff may always check.
"""
from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from courseplatform.grading import checks

from . import services
from .dispatch import CHECK_VIA
from .models import PENDING_STATES, Assignment, Submission
from .services import accept_upload, standing
from .validation import UploadRejected
from .views import upload_view



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


# --- the "Check" button of the assignment page (htmx) -------------------------------------------

def _refused(request, slug, message: str, status: int):
    if request.htmx:
        # htmx does not swap 4xx answers: the refusal is a 200 fragment shown in the check's slot,
        # with the real status in a header.
        response = HttpResponse(format_html('<p class="flag bad check-refused">{}</p>', message))
        response["X-Check-Status"] = str(status)
        return response
    messages.error(request, message)
    response = redirect(reverse("submissions:detail", args=[request.course.slug, slug]))
    if status == 413:
        response["Connection"] = "close"
    return response


@upload_view(_refused)
def check_view(request, course_slug, slug, assignment, upload):
    """POST a file: an htmx request gets the check's live card (it polls itself until graded);
    a plain form post is redirected to the assignment page. The size limit and CSRF: upload_view."""
    staff = request.membership.is_staff_role
    try:
        sub = check(assignment, request.user, upload, is_staff=staff)
    except UploadRejected as exc:
        return _refused(request, slug, exc.message, 429 if exc.code == "rate_limited" else 400)
    if not request.htmx:
        messages.success(request, f"Check received: {sub.original_name}. Only the visible tests run; it is not an attempt.")
        return redirect(reverse("submissions:detail", args=[course_slug, slug]) + f"#submission-{sub.pk}")
    sub.refresh_from_db()  # an eager or fast worker may have graded it already
    return render(request, "submissions/_submission.html", {
        "item": {"s": sub, "fb": services.feedback(sub, staff)}, "staff": staff, "course": request.course,
    })
