from django.apps import AppConfig

# The reminders run every 15 minutes from the one beat schedule (settings.CELERY_BEAT_SCHEDULE).
BEAT_ENTRY = "projects-milestone-reminders"


class ProjectsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "courseplatform.projects"
    verbose_name = "Projects and milestones"
