from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Operating the site: backup and restore, metrics for monitoring."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "courseplatform.ops"
    verbose_name = "Operations"

    def ready(self):
        from celery.signals import task_failure, task_retry

        from courseplatform.grading import signals

        from . import metrics

        def failed(sender=None, **kwargs):
            metrics.record_task(getattr(sender, "name", str(sender)), "failure")

        def retried(sender=None, **kwargs):
            metrics.record_task(getattr(sender, "name", str(sender)), "retry")

        def graded(sender=None, queue="", kind="", status="", result=None, latency_s=None, **kwargs):
            metrics.record_result(queue, kind, status, result, latency_s)

        def fault(sender=None, queue="", kind="", final=False, **kwargs):
            metrics.record_infrastructure_fault(queue, kind, final)

        task_failure.connect(failed, weak=False, dispatch_uid="ops-metrics-task-failure")
        task_retry.connect(retried, weak=False, dispatch_uid="ops-metrics-task-retry")
        # the grading path's results and faults (grading/signals.py), counted with the fact they report
        signals.result_saved.connect(graded, weak=False, dispatch_uid="ops-metrics-grading-result")
        signals.infrastructure_fault.connect(fault, weak=False, dispatch_uid="ops-metrics-grading-fault")
