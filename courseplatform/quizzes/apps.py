from django.apps import AppConfig


class QuizzesConfig(AppConfig):
    """Overdue attempts are closed every minute by beat (settings.CELERY_BEAT_SCHEDULE,
    "quizzes-close-overdue-attempts"); answers are also refused and attempts closed lazily on any
    access, so beat is a safety net, not the rule."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "courseplatform.quizzes"

    def ready(self):
        from . import tasks  # noqa: F401  registers the grading kinds and tasks (Django's ready() hook)
