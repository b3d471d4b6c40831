from django.db import models


class MetricCounter(models.Model):
    """One monotonic counter of the Prometheus metrics (courseplatform/ops/metrics.py) that more than
    one process moves: grading results and limit hits are counted by the Celery worker that saves
    them, failed tasks by the worker they failed in, and any web process serves /metrics. Kept in the
    database (one row per name and label set, bumped with an atomic UPDATE), so the numbers are the
    same whichever process or host is scraped and survive a restart."""

    name = models.CharField(max_length=100)
    labels = models.CharField(max_length=300, blank=True, help_text='Sorted label pairs: queue="cpu",status="graded".')
    value = models.FloatField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["name", "labels"], name="ops_metric_counter_unique")]

    def __str__(self) -> str:
        return f"{self.name}{{{self.labels}}} {self.value:g}"
