"""Assignments (one per grading pack), per-student extensions, submissions and API tokens.

A submission's file is stored once by content hash (immutable); the row records what was
graded, with which pack version, by which worker, and the result JSON the engine returned.
"""
from __future__ import annotations

import hashlib
import math
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from courseplatform.courses.models import Course
from courseplatform.grading import models as grading_models


class Queue(models.TextChoices):
    CPU = "cpu", "CPU"
    GPU = "gpu", "GPU"


class LatePolicy(models.TextChoices):
    PENALTY = "penalty", "Accepted late with a penalty per day, up to a hard cut-off"
    CLOSED = "closed", "Closed at the deadline"


class LeaderboardNames(models.TextChoices):
    PSEUDONYM = "pseudonym", "Students see pseudonyms (their own row is marked “you”)"
    FULL = "full", "Students see everyone's full name"


class LeaderboardOrder(models.TextChoices):
    DESC = "desc", "Higher is better"
    ASC = "asc", "Lower is better"


class ScoreRule(models.TextChoices):
    BEST = "best", "Best attempt counts"
    LATEST = "latest", "Latest attempt counts"


class Assignment(models.Model):
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="assignments")
    slug = models.SlugField(max_length=64)
    title = models.CharField(max_length=200)
    # The pack: where it was synced from, and the trusted copy the workers grade with.
    pack_source = models.CharField(max_length=500, blank=True, help_text="Pack folder it was synced from.")
    pack_hash = models.CharField(max_length=64, blank=True, help_text="SHA-256 over the pack's files.")
    pack_path = models.CharField(max_length=500, blank=True, help_text="Trusted copy under PACK_STORE.")
    pack_synced_at = models.DateTimeField(null=True, blank=True)
    pack_settings = models.JSONField(
        default=dict, blank=True, help_text="Deadline/late settings the pack's assignment.toml stated at the last sync."
    )
    handout_html = models.TextField(blank=True, help_text="Rendered, sanitised handout.md.")
    points = models.FloatField(default=100)
    queue = models.CharField(max_length=8, choices=Queue.choices, default=Queue.CPU)
    accepted_kinds = models.JSONField(default=list, blank=True, help_text='e.g. ["py", "ipynb", "zip"]')
    wall_limit_s = models.FloatField(default=120, help_text="The pack's wall-clock limit for one grade.")
    # Deadlines and policy (instructor-editable; sync keeps them unless the pack sets them).
    released = models.BooleanField(default=True, help_text="Students see released assignments only.")
    opens_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    late_policy = models.CharField(max_length=16, choices=LatePolicy.choices, default=LatePolicy.PENALTY)
    grace_minutes = models.PositiveIntegerField(default=0, help_text="Minutes after the deadline still counted on time.")
    late_penalty_percent = models.FloatField(default=10, help_text="Percent of the score lost per started day late.")
    late_cutoff_days = models.PositiveSmallIntegerField(
        default=3, help_text="No submission is accepted later than this many days after the (extended) deadline."
    )
    max_attempts = models.PositiveIntegerField(default=0, help_text="0 = unlimited.")
    cooldown_seconds = models.PositiveIntegerField(default=0, help_text="Minimum time between two attempts.")
    max_queued_per_student = models.PositiveSmallIntegerField(
        default=2, help_text="At most this many of a student's submissions wait in the queue at once."
    )
    score_rule = models.CharField(max_length=8, choices=ScoreRule.choices, default=ScoreRule.BEST)
    release_hidden_details = models.BooleanField(
        default=False, help_text="After the deadline, show hidden tests' names and messages to students."
    )
    # Leaderboard (packs whose results carry metrics, e.g. accuracy/F1 of a fine-tuned model).
    leaderboard_metric = models.CharField(
        max_length=64, blank=True,
        help_text="Metric the leaderboard ranks by (a name in the results' metrics, e.g. f1); empty = no leaderboard.",
    )
    leaderboard_order = models.CharField(max_length=4, choices=LeaderboardOrder.choices, default=LeaderboardOrder.DESC)
    leaderboard_names = models.CharField(
        max_length=12, choices=LeaderboardNames.choices, default=LeaderboardNames.PSEUDONYM,
        help_text="Staff always see full names.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["course", "slug"], name="submissions_assignment_slug_per_course")]
        ordering = ["course", models.F("due_at").asc(nulls_last=True), "slug"]

    def __str__(self) -> str:
        return f"{self.title} ({self.course.slug})"

    @property
    def kinds(self) -> list[str]:
        return list(self.accepted_kinds or ["py", "ipynb", "zip"])

    def due_for(self, user) -> timezone.datetime | None:
        """The deadline for this student: their extension if they have one."""
        ext = self.extensions.filter(student=user).first() if user is not None else None
        return ext.due_at if ext else self.due_at

    def hidden_details_visible(self, now=None) -> bool:
        now = now or timezone.now()
        return self.release_hidden_details and self.due_at is not None and now >= self.due_at

    def late_info(self, user, when=None) -> "LateInfo":
        return late_info(self, self.due_for(user), when or timezone.now())


class LateInfo:
    """Where a moment stands against a deadline under the assignment's late policy."""

    def __init__(self, due, when, days: int, penalty: float, accepted: bool, reason: str, cutoff):
        self.due, self.when, self.days, self.penalty, self.accepted, self.reason, self.cutoff = (
            due, when, days, penalty, accepted, reason, cutoff,
        )

    @property
    def late(self) -> bool:
        return self.days > 0


def late_info(assignment: Assignment, due, when) -> LateInfo:
    if due is None or when <= due + timedelta(minutes=assignment.grace_minutes):
        return LateInfo(due, when, 0, 0.0, True, "", None)
    days = max(1, math.ceil((when - due) / timedelta(days=1)))
    if assignment.late_policy == LatePolicy.CLOSED:
        return LateInfo(due, when, days, 100.0, False, "The deadline has passed and this assignment accepts no late work.", due)
    cutoff = due + timedelta(days=assignment.late_cutoff_days)
    penalty = min(100.0, days * assignment.late_penalty_percent)
    if when > cutoff:
        return LateInfo(
            due, when, days, penalty, False,
            f"The late cut-off ({assignment.late_cutoff_days} day(s) after the deadline) has passed; no more submissions are accepted.",
            cutoff,
        )
    return LateInfo(due, when, days, penalty, True, "", cutoff)


class Extension(models.Model):
    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="extensions")
    student = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignment_extensions")
    due_at = models.DateTimeField(help_text="This student's deadline.")
    reason = models.CharField(max_length=200, blank=True)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["assignment", "student"], name="submissions_one_extension_per_student")]

    def __str__(self) -> str:
        return f"{self.student} until {self.due_at:%Y-%m-%d %H:%M} ({self.assignment.slug})"


# A submission's states are those of every grading job (courseplatform/grading/models.py).
State, FINAL_STATES, PENDING_STATES = grading_models.State, grading_models.FINAL_STATES, grading_models.PENDING_STATES


class Submission(models.Model):
    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="submissions")
    student = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="submissions")
    is_test_run = models.BooleanField(default=False, help_text="Submitted by staff to try the pack; not graded for credit.")
    attempt = models.PositiveIntegerField(default=1)
    via = models.CharField(max_length=8, default="web", help_text="web | api")
    # The file, stored by content hash (immutable).
    sha256 = models.CharField(max_length=64)
    blob = models.CharField(max_length=200, help_text="Path of the blob under MEDIA_ROOT.")
    original_name = models.CharField(max_length=255)
    kind = models.CharField(max_length=8)
    size = models.PositiveIntegerField()
    # Grading.
    state = models.CharField(max_length=8, choices=State.choices, default=State.QUEUED, db_index=True)
    generation = models.PositiveIntegerField(default=1, help_text="Bumped by each regrade; stale tasks are ignored.")
    pack_hash = models.CharField(max_length=64, blank=True, help_text="Pack version graded with.")
    raw_score = models.FloatField(null=True, blank=True, help_text="Engine score before the late penalty.")
    score = models.FloatField(null=True, blank=True, help_text="Score after the late penalty.")
    max_score = models.FloatField(null=True, blank=True)
    late_days = models.PositiveIntegerField(default=0)
    penalty_percent = models.FloatField(default=0)
    result = models.JSONField(null=True, blank=True)
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    queued_at = models.DateTimeField(default=timezone.now, help_text="Last time it entered the queue.")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    deliveries = models.PositiveIntegerField(default=0, help_text="How many times a worker started grading it.")
    retries = models.PositiveIntegerField(default=0, help_text="Infrastructure retries.")
    # Operations: the grading worker's lease, and the fair-share tier it was queued with.
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="Last sign of life of the worker grading it (the sweeper's lease)."
    )
    fair_tier = models.PositiveSmallIntegerField(
        default=0, help_text="0 = the student's first submission of the hour; higher tiers wait behind lower ones."
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["assignment", "student", "-created_at"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.assignment.slug} by {self.student} ({self.state})"

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def is_late(self) -> bool:
        return self.late_days > 0

    @property
    def regrading(self) -> bool:
        """Queued or running again after it was graded: its previous score (kept in score, result)
        stands until the new result replaces it (services.regrade keeps it; README, Regrading)."""
        return self.state in PENDING_STATES and self.score is not None and self.generation > 1

    @property
    def has_score(self) -> bool:
        """A score that counts: graded, or graded before and being regraded now."""
        return self.score is not None and (self.state == State.GRADED or self.regrading)

    @property
    def grading_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None

    @property
    def turnaround_seconds(self) -> float | None:
        """Submit to result, as the student waited for it (not shown for regrades or old imports)."""
        if self.finished_at and self.generation == 1:
            seconds = (self.finished_at - self.created_at).total_seconds()
            return seconds if seconds < 3600 else None
        return None


def hash_token(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiToken(models.Model):
    """A personal API token for the CLI and the HTTP API. Only its hash is stored."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, default="CLI")
    prefix = models.CharField(max_length=12, unique=True)
    key_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.user} {self.prefix}… ({'revoked' if self.revoked_at else 'active'})"

    @classmethod
    def issue(cls, user, name: str = "CLI") -> tuple["ApiToken", str]:
        """Create a token; returns (row, the key). The key is shown once and never stored."""
        prefix = secrets.token_hex(4)
        key = f"cp_{prefix}_{secrets.token_urlsafe(32)}"
        return cls.objects.create(user=user, name=name or "CLI", prefix=prefix, key_hash=hash_token(key)), key

    @classmethod
    def authenticate(cls, key: str):
        """The user for a presented key, or None. Constant-time hash comparison."""
        import hmac

        parts = (key or "").split("_")
        if len(parts) < 3 or parts[0] != "cp":
            return None
        token = cls.objects.select_related("user").filter(prefix=parts[1], revoked_at__isnull=True).first()
        if token is None or not hmac.compare_digest(token.key_hash, hash_token(key)):
            return None
        if not token.user.is_active:
            return None
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
            cls.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user


class PackUpload(models.Model):
    """An instructor's pack zip: checked (reference full marks, starter zero, mutants as recorded)
    before it is installed into the course as a new or updated assignment."""

    class Status(models.TextChoices):
        CHECKING = "checking", "Checking"
        INSTALLED = "installed", "Installed"
        FAILED = "failed", "Failed the check"
        ERROR = "error", "Could not be checked"

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="pack_uploads")
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    original_name = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64)
    size = models.PositiveIntegerField()
    slug = models.SlugField(max_length=64)
    title = models.CharField(max_length=200, blank=True)
    queue = models.CharField(max_length=8, choices=Queue.choices, default=Queue.CPU)
    staging_path = models.CharField(max_length=500, help_text="Extracted pack, in trusted storage, while it is checked.")
    pack_hash = models.CharField(max_length=64, blank=True)
    regrade_after = models.BooleanField(default=False, help_text="Regrade every submission once installed.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.CHECKING, db_index=True)
    items = models.JSONField(default=list, blank=True, help_text="One entry per checked file: file, expected, score, ok, problem.")
    total_items = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True)
    assignment = models.ForeignKey(Assignment, null=True, blank=True, on_delete=models.SET_NULL, related_name="pack_uploads")
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.slug} ({self.original_name}, {self.status})"

    @property
    def is_final(self) -> bool:
        return self.status != self.Status.CHECKING
