"""Which score goes back to the LMS, and when.

A score is final, and released, when
  assignment: the assignment is released to students and the student's counted submission (the
              course's rule: best or latest, late penalty applied: submissions.services.counted_score)
              is graded and none of theirs is still queued or running;
  quiz:       the quiz is published, no attempt is open or has a code answer being graded, and the
              students' review is open (immediately, after the quiz closes, or "score only").
The fingerprint names what was counted (submission, its grading generation, score; or the attempts and
their regrades): a regrade or a new attempt changes it and the score is sent again; the same one is
never sent twice.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from courseplatform.quizzes.models import Attempt
from courseplatform.submissions import services as submission_services
from courseplatform.submissions.models import PENDING_STATES, Submission

from . import activities
from .models import CourseLink, Passback, PassbackState

log = logging.getLogger("courseplatform.lti")
STALE = timedelta(minutes=15)


@dataclass(frozen=True)
class FinalScore:
    score: float
    maximum: float
    fingerprint: str


def final_score(activity: activities.Activity, user) -> FinalScore | None:
    if activity.kind == "assignment":
        a = activity.obj
        if not a.released:
            return None
        subs = list(Submission.objects.filter(assignment=a, student=user, is_test_run=False))
        if any(s.state in PENDING_STATES for s in subs):
            return None
        counted = submission_services.counted_score(a, subs)
        if counted is None:
            return None
        maximum = float(counted.max_score or a.points)
        return FinalScore(float(counted.score), maximum, f"s{counted.pk}.g{counted.generation}:{counted.score:g}")
    quiz = activity.obj
    if not quiz.published:
        return None
    attempts = list(Attempt.objects.filter(quiz=quiz, student=user))
    done = [t for t in attempts if not t.is_open and t.score is not None]
    if not done or any(t.is_open or t.pending for t in attempts):
        return None
    if quiz.review == "after_close" and not quiz.has_closed():
        return None
    from courseplatform.quizzes.services import quiz_grade

    score = quiz_grade(quiz, attempts)
    parts = ",".join(f"a{t.pk}:{t.score:g}:{t.regraded_at.timestamp() if t.regraded_at else 0:.0f}"
                     for t in sorted(done, key=lambda t: t.pk))
    return FinalScore(float(score), float(quiz.max_points), f"{quiz.grading}|{parts}"[:200])


def lti_students(link: CourseLink):
    """The users of this LMS context who have an account here (launched, or enrolled by a roster sync)."""
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(lti_users__memberships__context=link.context).distinct()


def schedule(link: CourseLink, activity_key: str, user) -> Passback | None:
    """Queue a passback if the LMS should hear of a new final score (on commit; idempotent)."""
    activity = activities.find(link.course, activity_key)
    if activity is None:
        return None
    final = final_score(activity, user)
    if final is None:
        return None
    now = timezone.now()
    with transaction.atomic():
        pb, _ = Passback.objects.select_for_update().get_or_create(link=link, activity=activity_key, user=user)
        if pb.fingerprint == final.fingerprint:
            if pb.state == PassbackState.SENT and pb.sent_fingerprint == final.fingerprint:
                return pb  # the LMS has it
            if pb.state == PassbackState.FAILED:
                return pb  # the task retries with back-off; staff can send again from the LTI page
            if pb.state == PassbackState.PENDING and pb.next_try_at and pb.next_try_at > now - STALE:
                return pb  # queued (a message lost by the broker is re-sent after STALE)
        pb.state, pb.fingerprint = PassbackState.PENDING, final.fingerprint
        pb.score_given, pb.score_maximum = final.score, final.maximum
        pb.tries, pb.reason, pb.next_try_at = 0, "", now
        pb.save()
        transaction.on_commit(lambda: _send(pb.pk))
    return pb


def _send(pk: int) -> None:
    from .tasks import send_score

    send_score.delay(pk)


def activity_changed(course, activity_key: str, user) -> int:
    """A grade of ``user`` for ``activity_key`` may have changed: queue passbacks for every LMS context
    linked to the course where the user is known."""
    n = 0
    for link in CourseLink.objects.filter(course=course).select_related("course", "context"):
        if link.context.memberships.filter(user__auth_user=user).exists():
            n += schedule(link, activity_key, user) is not None
    return n


def reconcile(course=None) -> int:
    """Every linked course, every activity, every LMS-known student: queue what is final and unsent. The
    periodic safety net behind the grading hooks (quizzes release scores by time, brokers lose
    messages)."""
    n = 0
    links = CourseLink.objects.select_related("course", "context")
    if course is not None:
        links = links.filter(course=course)
    for link in links:
        users = list(lti_students(link))
        for activity in activities.activities(link.course):
            for user in users:
                before = Passback.objects.filter(link=link, activity=activity.key, user=user).values_list(
                    "fingerprint", "state").first()
                pb = schedule(link, activity.key, user)
                if pb is not None and (before is None or before != (pb.fingerprint, pb.state)):
                    n += 1
    return n


def resend_course(course) -> int:
    n = 0
    for pb in Passback.objects.filter(link__course=course).exclude(state=PassbackState.SENT):
        with transaction.atomic():
            Passback.objects.filter(pk=pb.pk).update(tries=0, state=PassbackState.PENDING)
            transaction.on_commit(lambda pk=pb.pk: _send(pk))
        n += 1
    return n
