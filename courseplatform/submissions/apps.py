from django.apps import AppConfig


class SubmissionsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "courseplatform.submissions"

    def ready(self):
        from . import tasks  # noqa: F401  registers the tasks dispatch.send looks up by name (Django's ready() hook)
