"""The sweeper's Celery task (beat: settings.CELERY_BEAT_SCHEDULE, queue "ops"). The grading tasks
are made per kind by worker.grading_task, in the apps' tasks modules."""
from __future__ import annotations

from celery import shared_task

from .sweeper import sweep


@shared_task(name="submissions.sweep_stuck", ignore_result=True)
def sweep_stuck() -> int:
    """Requeue every job of every kind whose lease lapsed, whose message the broker lost, or that is
    stuck otherwise (grading/sweeper.py). The name is the one beat and deployed workers know."""
    return sweep()
