from django.apps import AppConfig


class CoursesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "courseplatform.courses"

    def ready(self):
        from . import hooks  # imports the models (via the hook modules), so only once the registry is ready

        hooks.discover()
