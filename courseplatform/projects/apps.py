from django.apps import AppConfig

BEAT_ENTRY = "projects-milestone-reminders"


class ProjectsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "courseplatform.projects"
    verbose_name = "Projects and milestones"

    def ready(self):
        # Reminders run every 15 minutes under Celery beat; the 48-hour window and the
        # ReminderSent record make sure each group hears once per milestone.
        from celery.schedules import crontab

        from courseplatform.celery import app

        from .tasks import REMINDER_TASK

        schedule = dict(app.conf.beat_schedule or {})
        schedule.setdefault(BEAT_ENTRY, {"task": REMINDER_TASK, "schedule": crontab(minute="*/15")})
        app.conf.beat_schedule = schedule
