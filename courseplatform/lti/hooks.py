"""Where score passback listens to grading, without reaching into the grading code:

1. Celery's ``task_postrun`` signal for the assignment grading task (``submissions.grade_submission``,
   listed in GRADING_TASKS): when it returns "saved" (a result was stored), the student's assignment
   score is looked at again. Regrades run the same task, so they are covered.
2. Django's ``post_save`` of ``quizzes.Attempt``: a finished attempt (submitted, closed at the deadline,
   or regraded) of a quiz.
3. The periodic ``lti.reconcile_passback`` (beat, LTI_RECONCILE_S): every final, released, unsent
   score of every linked course, for what no event announces (a quiz's review opening when it closes,
   a lost broker message, a task renamed by a refactor).

Each only *schedules*: passback.schedule decides whether the score is final and new, so the three
overlapping is harmless.
"""
from __future__ import annotations

import logging

from celery.signals import task_postrun
from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

log = logging.getLogger("courseplatform.lti")
GRADING_TASKS = {"submissions.grade_submission"}


def _linked(course_id) -> bool:
    from .models import CourseLink

    return CourseLink.objects.filter(course_id=course_id).exists()


@task_postrun.connect(dispatch_uid="lti-passback-after-grading")
def after_grading(sender=None, task=None, args=None, retval=None, **kwargs):
    name = getattr(task, "name", "")
    if name not in GRADING_TASKS or retval != "saved" or not args:
        return
    try:
        from courseplatform.submissions.models import Submission

        from .passback import activity_changed

        sub = Submission.objects.select_related("assignment__course", "student").filter(pk=args[0]).first()
        if sub is None or sub.is_test_run or not _linked(sub.assignment.course_id):
            return
        activity_changed(sub.assignment.course, f"assignment:{sub.assignment.slug}", sub.student)
    except Exception:  # passback never breaks grading; the reconciler retries
        log.exception("LTI passback scheduling failed after grading task %s", args)


@receiver(post_save, sender="quizzes.Attempt", dispatch_uid="lti-passback-after-attempt")
def after_attempt(sender, instance, **kwargs):
    if instance.is_open or instance.score is None:
        return
    quiz = instance.quiz
    if not _linked(quiz.course_id):
        return

    def run():
        try:
            from .passback import activity_changed

            activity_changed(quiz.course, f"quiz:{quiz.slug}", instance.student)
        except Exception:
            log.exception("LTI passback scheduling failed after attempt %s", instance.pk)

    transaction.on_commit(run)
