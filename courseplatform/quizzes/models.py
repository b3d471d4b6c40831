"""Quizzes: banks of questions, timed attempts, answers and their grading.

A Question keeps the current version of its definition (`spec`, the parsed bank entry).
An attempt copies what the student saw into AttemptQuestion.snapshot (text, drawn
parameters, choice order, answer key), so a later edit of the bank does not change an
attempt until an instructor regrades it on purpose.
"""
from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from courseplatform.courses.models import Course


class ReviewPolicy(models.TextChoices):
    IMMEDIATELY = "immediately", "Immediately after submitting"
    AFTER_CLOSE = "after_close", "After the quiz closes"
    NEVER = "never", "Never (score only)"


class GradingRule(models.TextChoices):
    BEST = "best", "Best attempt"
    LATEST = "last", "Last attempt"  # same name as ScoreRule.LATEST; the stored value stays "last"
    MEAN = "mean", "Mean of attempts"


class QuizSource(models.TextChoices):
    BANK = "bank", "Bank file"
    GIFT = "gift", "GIFT import"


class Quiz(models.Model):
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="quizzes")
    slug = models.SlugField(max_length=64)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, help_text="Markdown, shown before the quiz starts.")
    source = models.CharField(max_length=8, choices=QuizSource.choices, default=QuizSource.BANK)
    source_path = models.CharField(max_length=300, blank=True)
    published = models.BooleanField(default=True, help_text="Students see only published quizzes.")
    opens_at = models.DateTimeField(null=True, blank=True, help_text="Empty: open as soon as published.")
    closes_at = models.DateTimeField(null=True, blank=True, help_text="Empty: never closes.")
    time_limit_minutes = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: no time limit.")
    max_attempts = models.PositiveSmallIntegerField(default=1, help_text="0: unlimited.")
    review = models.CharField(max_length=16, choices=ReviewPolicy.choices, default=ReviewPolicy.AFTER_CLOSE)
    grading = models.CharField(max_length=8, choices=GradingRule.choices, default=GradingRule.BEST)
    shuffle_questions = models.BooleanField(default=True)
    shuffle_choices = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["course", "opens_at", "title"]
        verbose_name_plural = "quizzes"
        constraints = [models.UniqueConstraint(fields=["course", "slug"], name="quiz_slug_per_course")]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("quizzes:detail", args=[self.course.slug, self.slug])

    # --- schedule -------------------------------------------------------------
    def is_open(self, now=None) -> bool:
        now = now or timezone.now()
        if not self.published:
            return False
        if self.opens_at and now < self.opens_at:
            return False
        if self.closes_at and now >= self.closes_at:
            return False
        return True

    def has_closed(self, now=None) -> bool:
        now = now or timezone.now()
        return bool(self.closes_at and now >= self.closes_at)

    def status(self, now=None) -> str:
        now = now or timezone.now()
        if not self.published:
            return "draft"
        if self.opens_at and now < self.opens_at:
            return "upcoming"
        if self.has_closed(now):
            return "closed"
        return "open"

    def active_questions(self):
        return self.questions.filter(active=True).order_by("position", "id")

    @property
    def max_points(self) -> float:
        return float(sum(q.points for q in self.active_questions()))


class Question(models.Model):
    class Kind(models.TextChoices):
        SINGLE = "single", "Single choice"
        MULTIPLE = "multiple", "Multiple choice"
        TRUEFALSE = "truefalse", "True/false"
        NUMERIC = "numeric", "Numeric"
        SHORT = "short", "Short text"
        CODE = "code", "Code"
        MATCHING = "matching", "Matching"

    quiz = models.ForeignKey(Quiz, on_delete=models.CASCADE, related_name="questions")
    key = models.SlugField(max_length=80, help_text="Stable id within the quiz (the bank's `id`).")
    position = models.PositiveIntegerField(default=0)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    points = models.FloatField(default=1.0)
    spec = models.JSONField(help_text="The validated bank entry.")
    content_hash = models.CharField(max_length=64)
    version = models.PositiveIntegerField(default=1)
    active = models.BooleanField(default=True, help_text="False once removed from the bank (old attempts keep it).")
    edited_on_web = models.BooleanField(
        default=False,
        help_text="Changed in the web editor since the last sync: a bank sync does not overwrite it until the bank "
                  "file holds the same question (the sync says so).",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["quiz", "position", "id"]
        constraints = [models.UniqueConstraint(fields=["quiz", "key"], name="question_key_per_quiz")]

    def __str__(self) -> str:
        return f"{self.quiz.slug}/{self.key} v{self.version}"


class Extension(models.Model):
    """Extra time for one student (accommodation, technical trouble)."""

    quiz = models.ForeignKey(Quiz, on_delete=models.CASCADE, related_name="extensions")
    student = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="quiz_extensions")
    extra_minutes = models.PositiveIntegerField(default=0, help_text="Added to the time limit.")
    closes_at = models.DateTimeField(null=True, blank=True, help_text="A later close time for this student.")
    reason = models.CharField(max_length=200, blank=True)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["quiz", "student"], name="one_extension_per_student")]

    def __str__(self) -> str:
        return f"{self.student} +{self.extra_minutes} min on {self.quiz.slug}"


def effective_close(quiz: Quiz, extension: Extension | None):
    close = quiz.closes_at
    if extension and extension.closes_at and (close is None or extension.closes_at > close):
        close = extension.closes_at
    return close


def compute_deadline(quiz: Quiz, started_at, extension: Extension | None):
    """Server deadline of an attempt: min(start + limit (+ extra), close (or the student's later close))."""
    candidates = []
    if quiz.time_limit_minutes:
        extra = extension.extra_minutes if extension else 0
        candidates.append(started_at + timedelta(minutes=quiz.time_limit_minutes + extra))
    close = effective_close(quiz, extension)
    if close:
        candidates.append(close)
    return min(candidates) if candidates else None


class Attempt(models.Model):
    class State(models.TextChoices):
        OPEN = "open", "In progress"
        SUBMITTED = "submitted", "Submitted"
        EXPIRED = "expired", "Closed at the deadline"

    quiz = models.ForeignKey(Quiz, on_delete=models.CASCADE, related_name="attempts")
    student = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="quiz_attempts")
    number = models.PositiveSmallIntegerField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN)
    started_at = models.DateTimeField(default=timezone.now)
    deadline = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    score = models.FloatField(null=True, blank=True)
    max_score = models.FloatField(default=0)
    pending = models.PositiveSmallIntegerField(default=0, help_text="Code answers still being graded.")
    regraded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["quiz", "student", "number"]
        constraints = [
            models.UniqueConstraint(fields=["quiz", "student", "number"], name="attempt_number_unique"),
            models.UniqueConstraint(
                fields=["quiz", "student"], condition=Q(state="open"), name="one_open_attempt"
            ),
        ]
        # The deadline sweep (services.close_overdue, every request path and the periodic task)
        # reads open attempts by deadline: a small partial index, only open attempts are in it.
        indexes = [models.Index(fields=["deadline"], condition=Q(state="open"), name="attempt_open_deadline")]

    def __str__(self) -> str:
        return f"{self.student} #{self.number} on {self.quiz.slug}"

    @property
    def is_open(self) -> bool:
        return self.state == self.State.OPEN

    def is_overdue(self, now=None) -> bool:
        now = now or timezone.now()
        return self.is_open and self.deadline is not None and now >= self.deadline

    def seconds_left(self, now=None) -> int | None:
        if self.deadline is None:
            return None
        now = now or timezone.now()
        return max(0, int((self.deadline - now).total_seconds()))

    def review_open(self, now=None) -> bool:
        if self.is_open:
            return False
        policy = self.quiz.review
        if policy == ReviewPolicy.IMMEDIATELY:
            return True
        if policy == ReviewPolicy.AFTER_CLOSE:
            return self.quiz.has_closed(now)
        return False

    @property
    def percent(self) -> float | None:
        if self.score is None or not self.max_score:
            return None
        return 100.0 * self.score / self.max_score


# A code answer's grading_state while the engine has it (its grading job is queued or running).
CODE_PENDING = "pending"


class AttemptQuestion(models.Model):
    attempt = models.ForeignKey(Attempt, on_delete=models.CASCADE, related_name="items")
    question = models.ForeignKey(Question, on_delete=models.RESTRICT, related_name="attempt_items")
    position = models.PositiveSmallIntegerField()
    version = models.PositiveIntegerField()
    snapshot = models.JSONField(help_text="What the student saw: text, drawn parameters, choice order, answer key.")
    response = models.JSONField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    score = models.FloatField(null=True, blank=True)
    max_score = models.FloatField(default=1.0)
    feedback = models.TextField(blank=True)
    grading_state = models.CharField(max_length=10, default="", blank=True, help_text="code: pending|graded|error")
    result = models.JSONField(null=True, blank=True, help_text="Engine result for code answers.")

    class Meta:
        ordering = ["attempt", "position"]
        constraints = [models.UniqueConstraint(fields=["attempt", "question"], name="question_once_per_attempt")]

    def __str__(self) -> str:
        return f"{self.attempt} q{self.position}"


class CodeCheck(models.Model):
    """A "Check" of a code answer during an attempt: the visible tests only, never an attempt, never
    a score (services.request_check limits how often; tasks.run_code_check grades it)."""

    class State(models.TextChoices):
        PENDING = "pending", "checking"
        DONE = "done", "done"
        ERROR = "error", "error"

    item = models.ForeignKey(AttemptQuestion, on_delete=models.CASCADE, related_name="checks")
    student = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    code = models.TextField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    feedback = models.TextField(blank=True)
    passed = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
