from django.apps import AppConfig


class LtiConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "courseplatform.lti"
    label = "lti"
    verbose_name = "LTI 1.3 (LMS integration)"

    def ready(self):
        # tasks: the passback task; hooks: where passback listens to grading (see hooks.py's docstring)
        from . import hooks, tasks  # noqa: F401
