from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Operating the site: backup and restore, metrics for monitoring. No models of its own."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "courseplatform.ops"
    verbose_name = "Operations"
