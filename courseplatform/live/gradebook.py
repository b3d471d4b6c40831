"""One gradebook item per ended live session, when the course counts them (LiveSettings.gradebook):
participation (questions answered), correctness (the answers' points) or half of each. One point
per question asked; a student who did not answer gets 0 for it."""
from __future__ import annotations

from collections import defaultdict

from django.urls import reverse

from courseplatform.core.hooks import GradeItem
from courseplatform.courses.models import Membership

from .models import GradebookMode, LiveSession, LiveSettings, Phase, Response


def items(course) -> list[GradeItem]:
    chosen = LiveSettings.objects.filter(course=course).values_list("gradebook", flat=True).first()
    if chosen in (None, GradebookMode.OFF):
        return []
    students = list(Membership.objects.filter(course=course).students().values_list("user_id", flat=True))
    out = []
    for live in LiveSession.objects.filter(course=course, phase=Phase.ENDED).select_related("lecture").order_by("created_at"):
        asked = live.questions.filter(opened_at__isnull=False).count()
        if not asked:
            continue
        answered, correct = defaultdict(int), defaultdict(float)
        for user_id, score in Response.objects.filter(question__live=live).values_list("user_id", "score"):
            answered[user_id] += 1
            correct[user_id] += score
        scores = {}
        for uid in students:
            if chosen == GradebookMode.PARTICIPATION:
                scores[uid] = float(answered[uid])
            elif chosen == GradebookMode.CORRECTNESS:
                scores[uid] = round(correct[uid], 4)
            else:
                scores[uid] = round((answered[uid] + correct[uid]) / 2, 4)
        out.append(GradeItem(
            key=f"live:{live.pk}", title=f"Live: {live.title} ({live.lecture.date:%d.%m.})", category="quizzes",
            max_points=float(asked), scores=scores, due=live.ended_at,
            url=reverse("live:results", args=[course.slug, live.pk])))
    return out
