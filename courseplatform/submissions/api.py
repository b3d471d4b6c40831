"""The HTTP API (django-ninja) under /api/: what the CLI uses.

Authentication: `Authorization: Bearer <personal token>` (create one on /api/profile/).
Schema: /api/openapi.json; interactive docs: /api/docs (assets served locally, no CDN).
The same role and ownership rules as the web pages apply: a student sees released
assignments of their courses and their own submissions only.
Times (deadlines, submitted/started/finished, queue estimates) are ISO 8601 in the course's time
zone with its UTC offset (the wall-clock time the web pages show), and `time_zone` names the zone.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import Http404
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from ninja import NinjaAPI, Schema, Status
from ninja.security import HttpBearer

from courseplatform.courses.models import Course, Membership
from courseplatform.courses.permissions import get_membership
from courseplatform.courses.timezones import zone

from . import services
from .checks import check
from .models import ApiToken, Assignment, Submission
from .queue import queue_info, queue_text
from .uploads import install_limit
from .validation import UploadRejected, max_bytes


class TokenAuth(HttpBearer):
    def authenticate(self, request, token):
        user = ApiToken.authenticate(token)
        if user is None:
            return None
        request.user = user
        # Before any body is parsed: refuse oversized uploads while they stream in.
        if request.method == "POST":
            install_limit(request)
        return user


api = NinjaAPI(
    title="courseplatform API",
    version="1",
    description=__doc__,
    auth=TokenAuth(),
    urls_namespace="api",  # docs: ninja's own Swagger page, its assets from "ninja" in INSTALLED_APPS (no CDN)
)


class Error(Schema):
    detail: str
    code: str | None = None


class AssignmentOut(Schema):
    course: str
    slug: str
    title: str
    points: float
    queue: str
    accepted: list[str]
    due_at: datetime | None
    your_due_at: datetime | None
    late_policy: str
    late_penalty_percent: float
    late_cutoff_days: int
    max_attempts: int
    attempts_used: int
    attempts_left: int | None
    cooldown_seconds: int
    can_submit: bool
    reason: str
    time_zone: str  # the course's zone: every time above is given in it, with its offset
    url: str


class TestOut(Schema):
    name: str
    score: float | None
    max_score: float | None
    status: str
    message: str
    visible: bool
    redacted: bool


class QueueOut(Schema):
    queue: str
    position: int | None  # 1 = next to start; null once grading started
    ahead: int
    running: int
    estimated_start: datetime | None
    estimated_finish: datetime | None
    typical_seconds: float | None  # median grading time of this assignment's recent grades
    text: str


class SubmissionOut(Schema):
    id: int
    course: str
    assignment: str
    attempt: int
    test_run: bool
    filename: str
    kind: str
    size: int
    state: str
    final: bool
    score: float | None
    raw_score: float | None
    max_score: float | None
    late_days: int
    penalty_percent: float
    message: str
    submitted_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    queue: QueueOut | None  # while queued or running: position and estimated start/finish
    time_zone: str  # the course's zone: every time above is given in it, with its offset
    url: str


class FeedbackOut(SubmissionOut):
    tests: list[TestOut]
    notes: list[str]
    metrics: dict[str, Any]


def _membership(request, course_slug) -> tuple[Course, Membership]:
    course = get_object_or_404(Course, slug=course_slug)
    membership = get_membership(request.auth, course)
    if membership is None:
        raise Http404("No such course.")
    return course, membership


def _assignments(request, course, membership):
    qs = Assignment.objects.filter(course=course)
    if not membership.is_staff_role:
        qs = qs.filter(released=True)
    return qs


def _local(dt, course):
    """A time in the course's zone (one zone per course: the web pages show the same wall clock)."""
    return timezone.localtime(dt, zone(course)) if dt is not None else None


def _assignment_out(request, a: Assignment, membership) -> dict:
    staff = membership.is_staff_role
    st = services.standing(a, request.auth, staff)
    c = a.course
    return {
        "course": a.course.slug, "slug": a.slug, "title": a.title, "points": a.points, "queue": a.queue,
        "accepted": a.kinds, "due_at": _local(a.due_at, c), "your_due_at": _local(st.due, c),
        "time_zone": str(zone(c)), "late_policy": a.late_policy,
        "late_penalty_percent": a.late_penalty_percent, "late_cutoff_days": a.late_cutoff_days,
        "max_attempts": a.max_attempts, "attempts_used": st.attempts_used, "attempts_left": st.attempts_left,
        "cooldown_seconds": a.cooldown_seconds, "can_submit": st.can_submit, "reason": st.reason,
        "url": request.build_absolute_uri(reverse("submissions:detail", args=[a.course.slug, a.slug])),
    }


def _submission_out(request, s: Submission) -> dict:
    c = s.assignment.course
    return {
        "id": s.pk, "course": s.assignment.course.slug, "assignment": s.assignment.slug, "attempt": s.attempt,
        "test_run": s.is_test_run, "filename": s.original_name, "kind": s.kind, "size": s.size, "state": s.state,
        "final": s.is_final, "score": s.score, "raw_score": s.raw_score, "max_score": s.max_score,
        "late_days": s.late_days, "penalty_percent": s.penalty_percent, "message": s.message,
        "submitted_at": _local(s.created_at, c), "started_at": _local(s.started_at, c),
        "finished_at": _local(s.finished_at, c), "queue": queue_out(s), "time_zone": str(zone(c)),
        "url": request.build_absolute_uri(reverse("submissions:detail", args=[s.assignment.course.slug, s.assignment.slug]))
        + f"#submission-{s.pk}",
    }


def queue_out(s: Submission) -> dict | None:
    if s.is_final:
        return None
    info = queue_info(s)
    c = s.assignment.course
    return {**info.as_dict(), "estimated_start": _local(info.estimated_start, c),
            "estimated_finish": _local(info.estimated_finish, c),
            "text": queue_text(info)} if info else None


def _visible_submission(request, pk) -> tuple[Submission, bool]:
    sub = get_object_or_404(Submission.objects.select_related("assignment__course", "student"), pk=pk)
    membership = get_membership(request.auth, sub.assignment.course)
    if membership is None:
        raise Http404("No such submission.")
    staff = membership.is_staff_role
    if not staff and (sub.student_id != request.auth.pk or not sub.assignment.released):
        raise Http404("No such submission.")
    return sub, staff


@api.get("/me", summary="Who the token belongs to, and their courses")
def me(request):
    user = request.auth
    return {
        "username": user.username,
        "name": user.get_full_name(),
        "courses": [
            {"slug": m.course.slug, "title": m.course.title, "role": m.role}
            for m in Membership.objects.filter(user=user).select_related("course")
        ],
    }


@api.get("/courses/{course}/assignments", response=list[AssignmentOut], summary="Assignments of a course")
def list_assignments(request, course: str):
    c, membership = _membership(request, course)
    return [_assignment_out(request, a, membership) for a in _assignments(request, c, membership)]


@api.get("/courses/{course}/assignments/{slug}", response=AssignmentOut, summary="One assignment, with your attempts left")
def get_assignment(request, course: str, slug: str):
    c, membership = _membership(request, course)
    a = get_object_or_404(_assignments(request, c, membership), slug=slug)
    return _assignment_out(request, a, membership)


@api.get("/courses/{course}/assignments/{slug}/submissions", response=list[SubmissionOut], summary="Your submissions")
def list_submissions(request, course: str, slug: str):
    c, membership = _membership(request, course)
    a = get_object_or_404(_assignments(request, c, membership), slug=slug)
    subs = Submission.objects.filter(assignment=a, student=request.auth).select_related("assignment__course")
    return [_submission_out(request, s) for s in subs]


@api.post(
    "/courses/{course}/assignments/{slug}/submissions",
    response={201: SubmissionOut, 400: Error, 403: Error, 404: Error, 413: Error},
    summary="Submit a file (multipart form field `file`)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary", "description": ".py, .ipynb or .zip"}},
            }}},
        }
    },
)
def create_submission(request, course: str, slug: str):
    c, membership = _membership(request, course)
    a = get_object_or_404(_assignments(request, c, membership), slug=slug)
    if getattr(request, "upload_too_large", False):
        return Status(413, {"detail": f"The file is larger than the limit of {max_bytes()} bytes.", "code": "too_large"})
    upload = request.FILES.get("file")
    if getattr(request, "upload_too_large", False):
        return Status(413, {"detail": f"The file is larger than the limit of {max_bytes()} bytes.", "code": "too_large"})
    try:
        sub = services.submit(a, request.auth, upload, is_staff=membership.is_staff_role, via="api")
    except UploadRejected as exc:
        status = 413 if exc.code == "too_large" else (403 if exc.code == "policy" else 400)
        return Status(status, {"detail": exc.message, "code": exc.code})
    return Status(201, _submission_out(request, sub))


@api.post(
    "/courses/{course}/assignments/{slug}/checks",
    response={201: SubmissionOut, 400: Error, 403: Error, 404: Error, 413: Error, 429: Error},
    summary="Check a file on the visible tests only (not an attempt; rate-limited per student)",
    description=(
        "Grades the file on the assignment's visible tests only; hidden tests are not run and not listed. "
        "It is not an attempt and never counts. Poll `/submissions/{id}` for the result (`test_run` is true). "
        "Refusals: 403 `policy` (assignment closed), 403 `queue` (a check is still running), "
        "429 `rate_limited` (too many checks in 10 minutes), 413 `too_large`, 400 for a bad file."
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary", "description": ".py, .ipynb or .zip"}},
            }}},
        }
    },
)
def create_check(request, course: str, slug: str):
    c, membership = _membership(request, course)
    a = get_object_or_404(_assignments(request, c, membership), slug=slug)
    too_large = Status(413, {"detail": f"The file is larger than the limit of {max_bytes()} bytes.", "code": "too_large"})
    if getattr(request, "upload_too_large", False):  # declared too large: the body is never parsed
        return too_large
    upload = request.FILES.get("file")
    if getattr(request, "upload_too_large", False):  # stopped while streaming in
        return too_large
    try:
        sub = check(a, request.auth, upload, is_staff=membership.is_staff_role)
    except UploadRejected as exc:
        status = {"too_large": 413, "policy": 403, "queue": 403, "rate_limited": 429}.get(exc.code, 400)
        return Status(status, {"detail": exc.message, "code": exc.code})
    return Status(201, _submission_out(request, sub))


@api.get("/submissions/{submission_id}", response=FeedbackOut, summary="State, score and feedback of a submission")
def get_submission(request, submission_id: int):
    sub, staff = _visible_submission(request, submission_id)
    fb = services.feedback(sub, staff)
    return {**_submission_out(request, sub), "tests": fb["tests"], "notes": fb["notes"], "metrics": fb["metrics"]}
