"""The states every piece of engine work goes through, and the lease record of the kinds whose own
row has none (quiz code answers and quiz checks; a Submission carries the same columns itself)."""
from __future__ import annotations

from django.db import models
from django.utils import timezone


class State(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    GRADED = "graded", "Graded"
    ERROR = "error", "Error"


FINAL_STATES = (State.GRADED, State.ERROR)
# The one definition of "still being graded" (waiting for a worker, or on one).
PENDING_STATES = (State.QUEUED, State.RUNNING)


class GradingJob(models.Model):
    """One piece of engine work of a kind that has no lease columns of its own: the quiz code answer
    (``quiz-answer``, object_id = AttemptQuestion) and the quiz check (``quiz-check``, object_id =
    CodeCheck). The columns are those of submissions.Submission with the same meaning, so that one
    lease, one sweeper and one requeue (grading/jobs.py) serve both."""

    kind = models.CharField(max_length=32, help_text="The job's kind: quiz-answer or quiz-check.")
    object_id = models.PositiveBigIntegerField(help_text="The graded row: an AttemptQuestion or a CodeCheck.")
    queue = models.CharField(max_length=8, default="cpu", help_text="The Celery queue it is sent to (the pack's).")
    state = models.CharField(max_length=8, choices=State.choices, default=State.QUEUED, db_index=True)
    generation = models.PositiveIntegerField(default=1, help_text="Bumped by each requeue; stale tasks are ignored.")
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    queued_at = models.DateTimeField(default=timezone.now, help_text="Last time it entered the queue.")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Last sign of life of the worker grading it.")
    worker = models.CharField(max_length=200, blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    deliveries = models.PositiveIntegerField(default=0, help_text="How many times a worker started grading it.")
    retries = models.PositiveIntegerField(default=0, help_text="Infrastructure retries.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "object_id"], name="grading_job_once_per_object")]

    def __str__(self) -> str:
        return f"{self.kind} #{self.object_id} ({self.state}, generation {self.generation})"
