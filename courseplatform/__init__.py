"""courseplatform: auto-graded assignments, quizzes and project milestones for LLM courses."""
from .celery import app as celery_app

__all__ = ("celery_app",)
