from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from courseplatform.courses.models import Course

CATEGORIES = ("assignments", "quizzes", "milestones", "attendance")
DEFAULT_WEIGHTS = {"assignments": 40, "quizzes": 20, "milestones": 30, "attendance": 10}

_weight = dict(max_digits=6, decimal_places=2, validators=[MinValueValidator(0), MaxValueValidator(1000)])


class CategoryWeights(models.Model):
    """How much each category counts in a course's total. Weights are relative: they need not add
    up to 100; categories without items are left out and the others renormalised."""

    course = models.OneToOneField(Course, on_delete=models.CASCADE, related_name="grade_weights")
    assignments = models.DecimalField(default=DEFAULT_WEIGHTS["assignments"], **_weight)
    quizzes = models.DecimalField(default=DEFAULT_WEIGHTS["quizzes"], **_weight)
    milestones = models.DecimalField(default=DEFAULT_WEIGHTS["milestones"], **_weight)
    attendance = models.DecimalField(default=DEFAULT_WEIGHTS["attendance"], **_weight)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "category weights"
        verbose_name_plural = "category weights"

    def __str__(self) -> str:
        return f"Weights of {self.course.slug}"

    @classmethod
    def for_course(cls, course) -> "CategoryWeights":
        obj, _ = cls.objects.get_or_create(course=course)
        return obj

    def as_dict(self) -> dict[str, float]:
        return {c: float(getattr(self, c)) for c in CATEGORIES}
