"""Similarity checks of an assignment's submissions (copy detection; staff only).

A check compares each student's latest submission with every other (grader/similarity/) and
keeps the ranked pairs above a floor, with their matching regions. Fingerprints are cached by the
file's sha256, so a rerun after new submissions only reads the new files. Reviews are kept per
pair of students, not per check, so a rerun keeps what staff decided.
"""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from courseplatform.submissions.models import Assignment, Submission


class SimilaritySettings(models.Model):
    """Per assignment: the report's threshold, the boilerplate share, and the automatic run."""

    assignment = models.OneToOneField(Assignment, on_delete=models.CASCADE, related_name="similarity_settings")
    run_after_deadline = models.BooleanField(
        default=False, help_text="Run a check once, automatically, when no more submissions are accepted.")
    threshold = models.FloatField(default=0.6, help_text="Pairs at or above this score are flagged (0–1).")
    boilerplate_share = models.FloatField(
        default=0.2, help_text="Code found in at least this share of the class is common: shown, never counted (0–1).")
    auto_run_at = models.DateTimeField(null=True, blank=True, help_text="When the automatic check was started.")

    def __str__(self) -> str:
        return f"similarity settings of {self.assignment}"


class FingerprintCache(models.Model):
    """A file's fingerprints (grader.similarity.fingerprint_source), by content and engine version."""

    sha256 = models.CharField(max_length=64)
    key = models.CharField(max_length=32, help_text="Engine version and k (grader.similarity.Params.cache_key).")
    data = models.JSONField()
    notes = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["sha256", "key"], name="similarity_fingerprint_once")]


class PublicSource(models.Model):
    """A known public implementation (a tutorial, a repository the course links) for an assignment."""

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="public_sources")
    name = models.CharField(max_length=255, help_text="File name (the path inside an uploaded zip).")
    text = models.TextField(help_text="The code compared (a notebook's code cells).")
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["assignment", "sha256"], name="similarity_public_source_once")]

    def __str__(self) -> str:
        return self.name


class SimilarityCheck(models.Model):
    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        ERROR = "error", "Error"

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="similarity_checks")
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", help_text="Empty: the automatic run after the deadline.")
    state = models.CharField(max_length=8, choices=State.choices, default=State.QUEUED, db_index=True)
    stage = models.CharField(max_length=120, blank=True)
    done_items = models.PositiveIntegerField(default=0)
    total_items = models.PositiveIntegerField(default=0)
    submissions = models.PositiveIntegerField(default=0, help_text="Latest submissions compared.")
    reused = models.PositiveIntegerField(default=0, help_text="Fingerprints taken from the cache.")
    params = models.JSONField(default=dict, blank=True)
    clusters = models.JSONField(default=list, blank=True, help_text="[[submission id, ...], ...]")
    notes = models.JSONField(default=dict, blank=True, help_text="submission id -> notes (unreadable parts).")
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"similarity check #{self.pk} of {self.assignment.slug} ({self.state})"

    @property
    def is_final(self) -> bool:
        return self.state in (self.State.DONE, self.State.ERROR)

    @property
    def percent(self) -> int:
        return int(100 * self.done_items / self.total_items) if self.total_items else 0

    @property
    def threshold(self) -> float:
        return float(self.params.get("threshold", 0.6))


class SimilarityPair(models.Model):
    check_run = models.ForeignKey(SimilarityCheck, on_delete=models.CASCADE, related_name="pairs")
    rank = models.PositiveIntegerField()
    sub_a = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="+")
    sub_b = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="+")
    score = models.FloatField()
    share_a = models.FloatField()
    share_b = models.FloatField()
    beyond_a = models.FloatField()
    beyond_b = models.FloatField()
    shared = models.PositiveIntegerField()
    common = models.PositiveIntegerField()
    public = models.PositiveIntegerField()
    public_sources = models.JSONField(default=list, blank=True)
    regions = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["rank"]
        indexes = [models.Index(fields=["check_run", "rank"])]

    def __str__(self) -> str:
        return f"pair #{self.rank} of check {self.check_run_id}: {self.score:.2f}"


class PairReview(models.Model):
    """Staff's decision on a pair of students of an assignment (kept across reruns)."""

    class Status(models.TextChoices):
        REVIEWED = "reviewed", "Reviewed: looks copied"
        DISMISSED = "dismissed", "Dismissed: not a copy"

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="pair_reviews")
    student_a = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    student_b = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices)
    note = models.TextField(blank=True)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["assignment", "student_a", "student_b"],
                                               name="similarity_one_review_per_pair")]

    def __str__(self) -> str:
        return f"{self.get_status_display()} ({self.assignment.slug})"
