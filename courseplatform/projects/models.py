"""Project groups, milestones, deliveries (every version kept), rubric grades and reminders."""
from __future__ import annotations

import secrets
from pathlib import PurePosixPath

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

from courseplatform.courses.models import Course

# Join codes: 10 symbols of a 31-letter alphabet without look-alikes (0/O, 1/I/L) ~ 50 bits.
JOIN_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
JOIN_CODE_LENGTH = 10


def new_join_code() -> str:
    return "".join(secrets.choice(JOIN_CODE_ALPHABET) for _ in range(JOIN_CODE_LENGTH))


def normalise_join_code(raw: str) -> str:
    return "".join(ch for ch in (raw or "").upper() if ch.isalnum())


class ProjectSettings(models.Model):
    """Per-course group rules. Created on first use with the defaults."""

    course = models.OneToOneField(Course, on_delete=models.CASCADE, related_name="project_settings")
    max_group_size = models.PositiveSmallIntegerField(default=4, validators=[MinValueValidator(1)])
    students_form_groups = models.BooleanField(
        default=True, help_text="Students may create, join and leave groups themselves (until groups lock)."
    )
    locked = models.BooleanField(default=False, help_text="Lock groups now: only staff can change them.")
    lock_at = models.DateTimeField(
        null=True, blank=True, help_text="Groups lock automatically at this time (e.g. the 'form groups' deadline)."
    )

    class Meta:
        verbose_name_plural = "project settings"

    def __str__(self) -> str:
        return f"Project settings of {self.course.slug}"

    @classmethod
    def for_course(cls, course: Course) -> "ProjectSettings":
        obj, _ = cls.objects.get_or_create(course=course)
        return obj

    def is_locked(self, now=None) -> bool:
        now = now or timezone.now()
        return self.locked or (self.lock_at is not None and now >= self.lock_at)


class Group(models.Model):
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="project_groups")
    name = models.CharField(max_length=80)
    join_code = models.CharField(max_length=16, unique=True, default=new_join_code, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["course", "name"]
        constraints = [
            models.UniqueConstraint(
                models.functions.Lower("name"), "course", name="group_name_unique_in_course"
            )
        ]

    def __str__(self) -> str:
        return self.name

    def member_users(self):
        return [m.user for m in self.members.select_related("user").order_by("user__last_name", "user__username")]

    def has_member(self, user) -> bool:
        return self.members.filter(user=user).exists()


class GroupMember(models.Model):
    """A student's place in a group. A student is in at most one group per course."""

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="+")
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="project_groups")
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["group", "user__username"]
        constraints = [models.UniqueConstraint(fields=["course", "user"], name="one_group_per_course")]

    def __str__(self) -> str:
        return f"{self.user} in {self.group}"


class GroupEvent(models.Model):
    """The history of every group change: who did what to whom, when."""

    class Action(models.TextChoices):
        CREATED = "created", "created the group"
        JOINED = "joined", "joined"
        LEFT = "left", "left"
        MOVED = "moved", "moved"
        REMOVED = "removed", "removed from group"
        RENAMED = "renamed", "renamed"
        DELETED = "deleted", "deleted the group"
        NEW_CODE = "new_code", "issued a new join code"
        LOCKED = "locked", "locked groups"
        UNLOCKED = "unlocked", "unlocked groups"
        SETTINGS = "settings", "changed group settings"

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="+")
    group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.SET_NULL, related_name="events")
    group_name = models.CharField(max_length=80, blank=True)  # kept after a group is deleted
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    subject = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=16, choices=Action.choices)
    detail = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor} {self.action} {self.group_name}"


class Deliverable(models.TextChoices):
    NONE = "none", "Nothing to upload"
    URL = "url", "Repository URL"
    FILE = "file", "File"
    BOTH = "both", "Repository URL and file"


class Milestone(models.Model):
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="milestones")
    slug = models.SlugField(max_length=64)
    title = models.CharField(max_length=200)
    due = models.DateTimeField()
    instructions = models.TextField(blank=True, help_text="Markdown")
    deliverable = models.CharField(max_length=8, choices=Deliverable.choices, default=Deliverable.FILE)
    file_types = models.CharField(
        max_length=100, default="pdf,md", help_text="Accepted file extensions, comma separated (pdf, md, txt, zip, ipynb)."
    )
    allow_late = models.BooleanField(default=False, help_text="Accept deliveries after the due date (flagged late).")
    points = models.DecimalField(
        max_digits=6, decimal_places=2, default=0,
        help_text="Maximum points when there is no rubric (with a rubric, the criteria add up to the maximum).",
    )
    min_sources = models.PositiveSmallIntegerField(
        default=0, help_text="Literature review: the Markdown delivery must describe at least this many sources (0: no check)."
    )
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["course", "due", "order", "id"]
        constraints = [models.UniqueConstraint(fields=["course", "slug"], name="milestone_slug_unique_in_course")]

    def __str__(self) -> str:
        return self.title

    @property
    def max_points(self) -> float:
        criteria = list(self.criteria.all())
        if criteria:
            return float(sum(c.points for c in criteria))
        return float(self.points)

    @property
    def wants_url(self) -> bool:
        return self.deliverable in (Deliverable.URL, Deliverable.BOTH)

    @property
    def wants_file(self) -> bool:
        return self.deliverable in (Deliverable.FILE, Deliverable.BOTH)

    @property
    def is_literature_review(self) -> bool:
        return self.min_sources > 0

    @property
    def extensions(self) -> list[str]:
        exts = [e.strip().lower().lstrip(".") for e in self.file_types.split(",") if e.strip()]
        if self.is_literature_review:
            exts = [e for e in exts if e in ("md", "markdown", "txt")] or ["md"]
        return exts

    def is_past_due(self, now=None) -> bool:
        return (now or timezone.now()) > self.due


class RubricCriterion(models.Model):
    milestone = models.ForeignKey(Milestone, on_delete=models.CASCADE, related_name="criteria")
    title = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    points = models.DecimalField(max_digits=6, decimal_places=2, validators=[MinValueValidator(0)])
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["milestone", "order", "id"]

    def __str__(self) -> str:
        return f"{self.title} ({self.points:g})"


class Delivery(models.Model):
    """A group's delivery for a milestone: one per group and milestone, with every version kept."""

    milestone = models.ForeignKey(Milestone, on_delete=models.CASCADE, related_name="deliveries")
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="deliveries")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["milestone", "group"]
        verbose_name_plural = "deliveries"
        constraints = [models.UniqueConstraint(fields=["milestone", "group"], name="one_delivery_per_group")]

    def __str__(self) -> str:
        return f"{self.group} · {self.milestone}"

    @property
    def latest(self) -> "DeliveryVersion | None":
        return self.versions.order_by("-number").first()


def delivery_upload_to(instance: "DeliveryVersion", filename: str) -> str:
    d = instance.delivery
    name = PurePosixPath(filename).name or "delivery"
    return (
        f"projects/{d.milestone.course.slug}/{d.milestone.slug}/group-{d.group_id}/"
        f"v{instance.number}-{secrets.token_hex(4)}-{name}"
    )


class DeliveryVersion(models.Model):
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    repo_url = models.URLField(max_length=500, blank=True)
    file = models.FileField(upload_to=delivery_upload_to, max_length=300, blank=True)
    filename = models.CharField(max_length=200, blank=True)
    size = models.PositiveIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    submitted_at = models.DateTimeField(default=timezone.now)
    is_late = models.BooleanField(default=False)
    check_report = models.JSONField(default=dict, blank=True)  # literature-review structure check

    class Meta:
        ordering = ["delivery", "-number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="version_number_unique")]

    def __str__(self) -> str:
        return f"{self.delivery} v{self.number}"


class MilestoneGrade(models.Model):
    """The group's grade for a milestone; every member gets it unless an override says otherwise."""

    milestone = models.ForeignKey(Milestone, on_delete=models.CASCADE, related_name="grades")
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="grades")
    score = models.DecimalField(max_digits=7, decimal_places=2)
    feedback = models.TextField(blank=True, help_text="Markdown, shown to the whole group")
    graded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    graded_at = models.DateTimeField(default=timezone.now)
    graded_version = models.ForeignKey(
        DeliveryVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["milestone", "group"], name="one_grade_per_group")]

    def __str__(self) -> str:
        return f"{self.group} · {self.milestone}: {self.score:g}"

    def score_for(self, user_id: int) -> float:
        for o in self.overrides.all():
            if o.user_id == user_id:
                return float(o.score)
        return float(self.score)


class CriterionScore(models.Model):
    grade = models.ForeignKey(MilestoneGrade, on_delete=models.CASCADE, related_name="criterion_scores")
    criterion = models.ForeignKey(RubricCriterion, on_delete=models.CASCADE, related_name="scores")
    points = models.DecimalField(max_digits=6, decimal_places=2)
    comment = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["criterion__order", "criterion_id"]
        constraints = [models.UniqueConstraint(fields=["grade", "criterion"], name="one_score_per_criterion")]


class MemberOverride(models.Model):
    """A different score for one member (e.g. a student who did not contribute), with the reason."""

    grade = models.ForeignKey(MilestoneGrade, on_delete=models.CASCADE, related_name="overrides")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    score = models.DecimalField(max_digits=7, decimal_places=2)
    reason = models.CharField(max_length=300)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["grade", "user"], name="one_override_per_member")]


class ReminderSent(models.Model):
    """A reminder e-mail went to this group for this milestone: never send it twice."""

    milestone = models.ForeignKey(Milestone, on_delete=models.CASCADE, related_name="reminders")
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="reminders")
    sent_at = models.DateTimeField(default=timezone.now)
    recipients = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["milestone", "group"], name="one_reminder_per_group")]
