"""Demo data: the course's banks as quizzes; one open now, one closed with attempts (so statistics show)."""
from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from . import bank, services
from .models import Attempt, Quiz
from .sync import sync

OPEN_NOW = "attention"
CLOSED_WITH_ATTEMPTS = "basics"


def load(course, people, stdout):
    sync(course, settings.ASSIGNMENTS_DIR, stdout)
    now = timezone.now().replace(second=0, microsecond=0)
    quizzes = {q.slug: q for q in Quiz.objects.filter(course=course)}
    if not quizzes:
        stdout.write("quizzes: no banks found, nothing to demo\n")
        return
    # Schedules are set once (a second run changes nothing), relative to today; except that the quiz
    # open now is opened again on a later run that finds it closed (the demo follows today's date).
    schedule = {
        CLOSED_WITH_ATTEMPTS: (now - timedelta(days=8), now - timedelta(days=1)),
        OPEN_NOW: (now - timedelta(hours=1), now + timedelta(days=6)),
    }
    later = 0
    for slug, quiz in sorted(quizzes.items()):
        if slug == OPEN_NOW and quiz.opens_at and quiz.closes_at and not quiz.opens_at <= now < quiz.closes_at:
            quiz.opens_at, quiz.closes_at = schedule[slug]
            quiz.save(update_fields=["opens_at", "closes_at"])
            stdout.write(f"quizzes: {quiz.title} opened again until {quiz.closes_at:%d.%m.%Y}\n")
            continue
        if quiz.opens_at or quiz.closes_at:
            continue
        if slug in schedule:
            quiz.opens_at, quiz.closes_at = schedule[slug]
        else:
            later += 1
            quiz.opens_at = now + timedelta(days=7 * later)
            quiz.closes_at = quiz.opens_at + timedelta(days=7)
        if slug == OPEN_NOW:
            quiz.review = "immediately"
        quiz.published = True
        quiz.save()
    closed = quizzes.get(CLOSED_WITH_ATTEMPTS)
    if closed is None:
        return
    closed.refresh_from_db()
    made = 0
    for k, student in enumerate(people.get("students", [])):
        if Attempt.objects.filter(quiz=closed, student=student).exists():
            continue
        started = closed.opens_at + timedelta(days=1, minutes=17 * k)
        attempt = services.start_attempt(closed, student, now=started)
        skill = 0.45 + 0.5 * ((k * 37) % 11) / 10
        for item in attempt.items.all():
            right = bank.Draw(bank.seed_for("demo", student.pk, item.question.key)).random() < skill
            response = _demo_response(item.snapshot, right)
            if response is not None:
                item.response, item.answered_at = response, started + timedelta(minutes=2)
                item.save(update_fields=["response", "answered_at"])
        services.submit_attempt(attempt.pk, now=started + timedelta(minutes=12))
        made += 1
    stdout.write(f"quizzes: {len(quizzes)} quizzes; {made} demo attempts on {closed.title}\n")


def _demo_response(snap, right: bool):
    kind = snap["type"]
    if kind == "single":
        good = [c["id"] for c in snap["choices"] if c["weight"] == 1.0]
        bad = [c["id"] for c in snap["choices"] if not c["correct"]]
        return {"choice": good[0] if right or not bad else bad[0]}
    if kind == "multiple":
        good = [c["id"] for c in snap["choices"] if c["correct"]]
        bad = [c["id"] for c in snap["choices"] if not c["correct"]]
        return {"choices": good if right or not bad else good[:-1] + bad[:1]}
    if kind == "truefalse":
        return {"value": snap["answer"] if right else not snap["answer"]}
    if kind == "numeric":
        a = snap["answers"][0]
        value = a.get("value", a.get("min"))
        value = value if right else value * 2 + 1
        return {"raw": f"{value:.6g}", "value": float(f"{value:.6g}")}
    if kind == "short":
        texts = [a["text"] for a in snap["answers"] if a["weight"] == 1.0]
        return {"text": texts[0] if right and texts else "not sure"}
    if kind == "matching":
        key = snap["key"]
        wrong = [o["id"] for o in snap["options"]]
        return {"matches": {stem: option if right or i else next(w for w in wrong if w != option)
                            for i, (stem, option) in enumerate(key.items())}}
    return None
