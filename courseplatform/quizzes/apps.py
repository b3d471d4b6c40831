from datetime import timedelta

from django.apps import AppConfig


class QuizzesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "courseplatform.quizzes"

    def ready(self):
        # Close attempts whose browser is gone, every minute (celery beat). Answers are also
        # refused and attempts closed lazily on any access, so beat is a safety net, not the rule.
        try:
            from courseplatform.celery import app
        except ImportError:  # pragma: no cover
            return
        schedule = dict(app.conf.beat_schedule or {})
        schedule.setdefault(
            "quizzes-close-overdue-attempts",
            {"task": "courseplatform.quizzes.tasks.close_overdue_attempts", "schedule": timedelta(minutes=1)},
        )
        app.conf.beat_schedule = schedule
