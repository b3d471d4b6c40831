"""A live session of a quiz in one lecture session: its questions (copied from the bank when it
starts, so editing the bank never changes a running session), who joined, and every answer."""
from __future__ import annotations

from django.conf import settings
from django.db import models

from courseplatform.courses.models import Course, LectureSession


class GradebookMode(models.TextChoices):
    OFF = "off", "Not counted"
    PARTICIPATION = "participation", "Participation (answered questions)"
    CORRECTNESS = "correctness", "Correctness (points of the answers)"
    BOTH = "both", "Half participation, half correctness"


class LiveSettings(models.Model):
    """Per course: how ended live sessions count in the gradebook (absent row: not counted)."""

    course = models.OneToOneField(Course, on_delete=models.CASCADE, related_name="live_settings")
    gradebook = models.CharField(max_length=16, choices=GradebookMode.choices, default=GradebookMode.OFF)

    def __str__(self) -> str:
        return f"{self.course.slug}: live quizzes {self.gradebook}"


class Phase(models.TextChoices):
    LOBBY = "lobby", "Waiting to start"
    OPEN = "open", "Question open"
    CLOSED = "closed", "Question closed"
    REVEALED = "revealed", "Answer shown"
    ENDED = "ended", "Ended"


class LiveSession(models.Model):
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="live_sessions")
    lecture = models.ForeignKey(LectureSession, on_delete=models.CASCADE, related_name="live_sessions")
    title = models.CharField(max_length=200)
    quiz = models.ForeignKey("quizzes.Quiz", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    code = models.CharField(max_length=12, unique=True, help_text="The join code shown on the projector.")
    mark_attendance = models.BooleanField(default=True, help_text="Joining marks the student present.")
    phase = models.CharField(max_length=10, choices=Phase.choices, default=Phase.LOBBY)
    current = models.IntegerField(default=-1, help_text="Position of the current question (-1: none yet).")
    version = models.PositiveIntegerField(default=1, help_text="Bumped on every change of phase or question.")
    closes_at = models.DateTimeField(null=True, blank=True, help_text="Countdown end of the open question.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.title} ({self.lecture})"


class LiveQuestion(models.Model):
    live = models.ForeignKey(LiveSession, on_delete=models.CASCADE, related_name="questions")
    position = models.PositiveIntegerField()
    key = models.CharField(max_length=80)
    kind = models.CharField(max_length=12)
    spec = models.JSONField(help_text="The bank entry as it was when the session started.")
    personal = models.BooleanField(default=False, help_text="Numbers drawn per student.")
    snapshot = models.JSONField(help_text="What every phone sees (personal: an example), with the key.")
    opened_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["live", "position"]
        constraints = [models.UniqueConstraint(fields=["live", "position"], name="live_one_question_per_position")]

    def __str__(self) -> str:
        return f"{self.live_id}#{self.position + 1} {self.key}"


class Participant(models.Model):
    live = models.ForeignKey(LiveSession, on_delete=models.CASCADE, related_name="participants")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["live", "user"], name="live_one_join_per_student")]


class Response(models.Model):
    question = models.ForeignKey(LiveQuestion, on_delete=models.CASCADE, related_name="responses")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    response = models.JSONField()
    snapshot = models.JSONField(null=True, blank=True, help_text="Personal questions: this student's numbers.")
    score = models.FloatField(help_text="Fraction in [0, 1].")
    answered_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["question", "user"], name="live_one_answer_per_question")]


class JoinFailure(models.Model):
    """A wrong join code typed by a user: joins are refused after too many in a window."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    at = models.DateTimeField(auto_now_add=True, db_index=True)
