"""Celery tasks of the projects app. The beat schedule entry is added in ProjectsConfig.ready()."""
from __future__ import annotations

from celery import shared_task

from .reminders import send_reminders

REMINDER_TASK = "courseplatform.projects.tasks.send_milestone_reminders"


@shared_task(name=REMINDER_TASK, ignore_result=True, autoretry_for=(ConnectionError, OSError),
             retry_backoff=60, max_retries=3)
def send_milestone_reminders() -> int:
    return len(send_reminders().sent)
