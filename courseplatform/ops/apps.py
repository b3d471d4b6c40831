from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Operating the site: backup and restore, metrics for monitoring."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "courseplatform.ops"
    verbose_name = "Operations"

    def ready(self):
        from celery.signals import task_failure, task_retry

        from . import metrics

        def failed(sender=None, **kwargs):
            metrics.record_task(getattr(sender, "name", str(sender)), "failure")

        def retried(sender=None, **kwargs):
            metrics.record_task(getattr(sender, "name", str(sender)), "retry")

        task_failure.connect(failed, weak=False, dispatch_uid="ops-metrics-task-failure")
        task_retry.connect(retried, weak=False, dispatch_uid="ops-metrics-task-retry")
