"""One gradebook item per published quiz: the score that counts by the quiz's rule (best, last or mean)."""
from __future__ import annotations

from collections import defaultdict

from django.urls import reverse

from courseplatform.core.hooks import GradeItem
from courseplatform.courses.models import Membership

from .models import Attempt, Quiz
from .services import quiz_grade


def items(course) -> list[GradeItem]:
    students = list(Membership.objects.filter(course=course).students().values_list("user_id", flat=True))
    out = []
    for quiz in Quiz.objects.filter(course=course, published=True).order_by("opens_at", "title"):
        by_student = defaultdict(list)
        for a in Attempt.objects.filter(quiz=quiz):
            by_student[a.student_id].append(a)
        scores, notes = {}, {}
        for uid in students:
            attempts = by_student.get(uid, [])
            scores[uid] = quiz_grade(quiz, attempts)
            if any(a.is_open for a in attempts):
                notes[uid] = "attempt in progress"
            elif any(a.pending for a in attempts):
                notes[uid] = "code answer being graded"
            elif len(attempts) > 1:
                notes[uid] = f"{quiz.grading} of {len(attempts)} attempts"
        out.append(GradeItem(
            key=f"quiz:{quiz.slug}", title=quiz.title, category="quizzes", max_points=quiz.max_points,
            scores=scores, due=quiz.closes_at, url=reverse("quizzes:attempts", args=[course.slug, quiz.slug]),
            notes=notes))
    return out
