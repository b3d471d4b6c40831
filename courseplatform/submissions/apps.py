from django.apps import AppConfig


class SubmissionsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "courseplatform.submissions"

    def ready(self):
        # tasks: registers the tasks dispatch.send looks up by name; warm: connects the worker signals
        from . import tasks, warm  # noqa: F401
