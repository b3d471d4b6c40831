from django.apps import AppConfig


class GradingConfig(AppConfig):
    """The one grading path (see __init__.py): the job kinds register themselves when their app's
    tasks module is imported (each app's ready())."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "courseplatform.grading"

    def ready(self):
        from . import tasks  # noqa: F401  registers the sweeper task
