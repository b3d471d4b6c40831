"""The HTTP API (django-ninja) under /api/: what the CLI uses.

Authentication: `Authorization: Bearer <personal token>` (create one on /api/profile/).
Schema: /api/openapi.json; interactive docs: /api/docs (assets served locally, no CDN).
The same role and ownership rules as the web pages apply: a student sees released
assignments of their courses and their own submissions only.
Times (deadlines, submitted/started/finished, queue estimates) are ISO 8601 in the course's time
zone with its UTC offset (the wall-clock time the web pages show), and `time_zone` names the zone.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from functools import partial
from typing import Any

from django.http import Http404
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from ninja import NinjaAPI, Schema, Status
from ninja.security import HttpBearer

from courseplatform.core.timezones import zone
from courseplatform.courses.models import Course, Membership
from courseplatform.courses.permissions import course_membership, get_membership

from . import services
from .precheck import check
from .models import ApiToken, Assignment, Submission
from .queue import QueueInfo, queue_info, queue_text
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

    # From an Assignment whose `standing` (services.standing: the caller's deadline and attempts)
    # the endpoint has set; times in the course's zone.
    @staticmethod
    def resolve_course(a: Assignment) -> str:
        return a.course.slug

    @staticmethod
    def resolve_accepted(a: Assignment) -> list[str]:
        return a.kinds

    @staticmethod
    def resolve_due_at(a: Assignment):
        return _local(a.due_at, a.course)

    @staticmethod
    def resolve_your_due_at(a: Assignment):
        return _local(a.standing.due, a.course)

    @staticmethod
    def resolve_attempts_used(a: Assignment) -> int:
        return a.standing.attempts_used

    @staticmethod
    def resolve_attempts_left(a: Assignment) -> int | None:
        return a.standing.attempts_left

    @staticmethod
    def resolve_can_submit(a: Assignment) -> bool:
        return a.standing.can_submit

    @staticmethod
    def resolve_reason(a: Assignment) -> str:
        return a.standing.reason

    @staticmethod
    def resolve_time_zone(a: Assignment) -> str:
        return str(zone(a.course))

    @staticmethod
    def resolve_url(a: Assignment, context) -> str:
        return context["request"].build_absolute_uri(reverse("submissions:detail", args=[a.course.slug, a.slug]))


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

    # From a queue.QueueInfo whose times are already in the course's zone (SubmissionOut.resolve_queue)
    @staticmethod
    def resolve_typical_seconds(info: QueueInfo) -> float | None:
        return round(info.typical_seconds, 1) if info.typical_seconds is not None else None

    @staticmethod
    def resolve_text(info: QueueInfo) -> str:
        return queue_text(info)


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

    # From a Submission (with assignment__course selected); times in the course's zone.
    @staticmethod
    def resolve_course(s: Submission) -> str:
        return s.assignment.course.slug

    @staticmethod
    def resolve_assignment(s: Submission) -> str:
        return s.assignment.slug

    @staticmethod
    def resolve_test_run(s: Submission) -> bool:
        return s.is_test_run

    @staticmethod
    def resolve_filename(s: Submission) -> str:
        return s.original_name

    @staticmethod
    def resolve_final(s: Submission) -> bool:
        return s.is_final

    @staticmethod
    def resolve_submitted_at(s: Submission):
        return _local(s.created_at, s.assignment.course)

    @staticmethod
    def resolve_started_at(s: Submission):
        return _local(s.started_at, s.assignment.course)

    @staticmethod
    def resolve_finished_at(s: Submission):
        return _local(s.finished_at, s.assignment.course)

    @staticmethod
    def resolve_queue(s: Submission) -> QueueInfo | None:
        info = None if s.is_final else queue_info(s)
        if info is None:
            return None
        c = s.assignment.course
        return replace(info, estimated_start=_local(info.estimated_start, c),
                       estimated_finish=_local(info.estimated_finish, c))

    @staticmethod
    def resolve_time_zone(s: Submission) -> str:
        return str(zone(s.assignment.course))

    @staticmethod
    def resolve_url(s: Submission, context) -> str:
        detail = reverse("submissions:detail", args=[s.assignment.course.slug, s.assignment.slug])
        return context["request"].build_absolute_uri(detail) + f"#submission-{s.pk}"


class FeedbackOut(SubmissionOut):
    tests: list[TestOut]
    notes: list[str]
    metrics: dict[str, Any]

    # From a Submission whose `shown_feedback` (services.feedback: what this viewer may see) the
    # endpoint has set.
    @staticmethod
    def resolve_tests(s: Submission) -> list[dict]:
        return s.shown_feedback["tests"]

    @staticmethod
    def resolve_notes(s: Submission) -> list[str]:
        return s.shown_feedback["notes"]

    @staticmethod
    def resolve_metrics(s: Submission) -> dict[str, Any]:
        return s.shown_feedback["metrics"]


class CourseRoleOut(Schema):
    slug: str
    title: str
    role: str

    # From a Membership
    @staticmethod
    def resolve_slug(m: Membership) -> str:
        return m.course.slug

    @staticmethod
    def resolve_title(m: Membership) -> str:
        return m.course.title


class MeOut(Schema):
    username: str
    name: str
    courses: list[CourseRoleOut]

    # From the token's user
    @staticmethod
    def resolve_name(user) -> str:
        return user.get_full_name()

    @staticmethod
    def resolve_courses(user) -> list[Membership]:
        return list(Membership.objects.filter(user=user).select_related("course"))


def _membership(request, course_slug) -> tuple[Course, Membership]:
    return course_membership(request.auth, course_slug)


def _assignments(request, course, membership):
    qs = Assignment.objects.filter(course=course)
    if not membership.is_staff_role:
        qs = qs.filter(released=True)
    return qs


def _local(dt, course):
    """A time in the course's zone (one zone per course: the web pages show the same wall clock)."""
    return timezone.localtime(dt, zone(course)) if dt is not None else None


def _with_standing(request, a: Assignment, membership) -> Assignment:
    """The assignment with the caller's standing (read by AssignmentOut)."""
    a.standing = services.standing(a, request.auth, membership.is_staff_role)
    return a


def _visible_submission(request, pk) -> tuple[Submission, bool]:
    sub = get_object_or_404(Submission.objects.select_related("assignment__course", "student"), pk=pk)
    membership = get_membership(request.auth, sub.assignment.course)
    if membership is None:
        raise Http404("No such submission.")
    staff = membership.is_staff_role
    if not staff and (sub.student_id != request.auth.pk or not sub.assignment.released):
        raise Http404("No such submission.")
    return sub, staff


@api.get("/me", response=MeOut, summary="Who the token belongs to, and their courses")
def me(request):
    return request.auth


@api.get("/courses/{course}/assignments", response=list[AssignmentOut], summary="Assignments of a course")
def list_assignments(request, course: str):
    c, membership = _membership(request, course)
    return [_with_standing(request, a, membership) for a in _assignments(request, c, membership)]


@api.get("/courses/{course}/assignments/{slug}", response=AssignmentOut, summary="One assignment, with your attempts left")
def get_assignment(request, course: str, slug: str):
    c, membership = _membership(request, course)
    a = get_object_or_404(_assignments(request, c, membership), slug=slug)
    return _with_standing(request, a, membership)


@api.get("/courses/{course}/assignments/{slug}/submissions", response=list[SubmissionOut], summary="Your submissions")
def list_submissions(request, course: str, slug: str):
    c, membership = _membership(request, course)
    a = get_object_or_404(_assignments(request, c, membership), slug=slug)
    subs = Submission.objects.filter(assignment=a, student=request.auth).select_related("assignment__course")
    return list(subs)


def _file_upload_body() -> dict:
    """The OpenAPI request body of an upload endpoint: one multipart field `file` (a fresh dict each)."""
    return {
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary", "description": ".py, .ipynb or .zip"}},
            }}},
        }
    }


@api.post(
    "/courses/{course}/assignments/{slug}/submissions",
    response={201: SubmissionOut, 400: Error, 403: Error, 404: Error, 413: Error},
    summary="Submit a file (multipart form field `file`)",
    openapi_extra=_file_upload_body(),
)
def create_submission(request, course: str, slug: str):
    return _receive_upload(request, course, slug, partial(services.submit, via="api"))


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
    openapi_extra=_file_upload_body(),
)
def create_check(request, course: str, slug: str):
    return _receive_upload(request, course, slug, check)


# The status of each refusal code; any other code is a bad file (400). A submission is refused
# with "policy" (or the upload's own codes); a check also with "queue" and "rate_limited".
REFUSAL_STATUS = {"too_large": 413, "policy": 403, "queue": 403, "rate_limited": 429}


def _receive_upload(request, course: str, slug: str, service):
    """The multipart `file` handed to `service` (services.submit or precheck.check): 201 with the
    submission, 413 when the upload is too large, or the status of the service's refusal."""
    c, membership = _membership(request, course)
    a = get_object_or_404(_assignments(request, c, membership), slug=slug)
    too_large = Status(413, Error(detail=f"The file is larger than the limit of {max_bytes()} bytes.", code="too_large"))
    if getattr(request, "upload_too_large", False):  # declared too large: the body is never parsed
        return too_large
    upload = request.FILES.get("file")
    if getattr(request, "upload_too_large", False):  # stopped while streaming in
        return too_large
    try:
        sub = service(a, request.auth, upload, is_staff=membership.is_staff_role)
    except UploadRejected as exc:
        return Status(REFUSAL_STATUS.get(exc.code, 400), Error(detail=exc.message, code=exc.code))
    return Status(201, sub)


@api.get("/submissions/{submission_id}", response=FeedbackOut, summary="State, score and feedback of a submission")
def get_submission(request, submission_id: int):
    sub, staff = _visible_submission(request, submission_id)
    sub.shown_feedback = services.feedback(sub, staff)
    return sub
