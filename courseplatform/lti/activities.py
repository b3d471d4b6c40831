"""The activities an LMS can link to: ``assignment:<slug>`` and ``quiz:<slug>`` of a course."""
from __future__ import annotations

from dataclasses import dataclass

from django.urls import reverse

from courseplatform.quizzes.models import Quiz
from courseplatform.submissions.models import Assignment


@dataclass(frozen=True)
class Activity:
    key: str
    kind: str
    title: str
    points: float
    obj: object

    def url(self, course) -> str:
        if self.kind == "assignment":
            return reverse("submissions:detail", args=[course.slug, self.obj.slug])
        return reverse("quizzes:detail", args=[course.slug, self.obj.slug])


def activities(course) -> list[Activity]:
    out = [Activity(f"assignment:{a.slug}", "assignment", a.title, float(a.points), a)
           for a in Assignment.objects.filter(course=course, released=True).order_by("due_at", "slug")]
    out += [Activity(f"quiz:{q.slug}", "quiz", q.title, float(q.max_points), q)
            for q in Quiz.objects.filter(course=course, published=True).order_by("opens_at", "title")]
    return out


def find(course, key: str) -> Activity | None:
    kind, _, slug = (key or "").partition(":")
    if kind == "assignment":
        a = Assignment.objects.filter(course=course, slug=slug).first()
        return Activity(key, kind, a.title, float(a.points), a) if a else None
    if kind == "quiz":
        q = Quiz.objects.filter(course=course, slug=slug).first()
        return Activity(key, kind, q.title, float(q.max_points), q) if q else None
    return None
