"""The names the submissions app sends its tasks by, and the one place that sends a task by name.

A task is looked up in Celery's registry by the stable name it is declared with in ``tasks.py``, so
the modules that send never import ``tasks.py``, while ``tasks.py`` imports them at the top of its
file: imports run one way, tasks → services/packs → dispatch. A submission is graded through the one
grading path (courseplatform/grading: services.enqueue_on_commit and regrade go through
grading.jobs); packs.py sends the pack self-check with ``send``; the demo grades in this process
with ``run_here``. ``SubmissionsConfig.ready()`` imports ``tasks.py``, so the registry holds these
tasks in every process.
"""
from __future__ import annotations

from django.conf import settings
from django.db.models import Q

from courseplatform.celery import app

SUBMISSION_KIND = "submission"  # the grading kind (courseplatform/grading) of a Submission
GRADE_SUBMISSION = "submissions.grade_submission"
CHECK_PACK_UPLOAD = "submissions.check_pack_upload"
CHECK_VIA = "check"  # Submission.via of a student's "Check": visible tests only, never for credit


def run_queue(sub) -> str:
    """The queue a submission is graded on: its pack's, except that a Check of a GPU pack runs on a
    CPU worker, where the engine gives the driver the CPU device and so the pack's small CPU
    settings: a Check never takes the GPU from a submission, and only submissions reach the GPU
    queue and its fair share."""
    return queue_for(sub.assignment.queue, sub.via)


def on_queue(queue: str) -> Q:
    """The submissions graded on ``queue`` (queue_for as a query: a GPU pack's checks are on cpu)."""
    if not settings.GPU_CHECKS_ON_CPU:  # every grade on its pack's queue
        return Q(assignment__queue=queue)
    check_of_gpu_pack = Q(assignment__queue="gpu", via=CHECK_VIA)
    if queue == "cpu":
        return Q(assignment__queue="cpu") | check_of_gpu_pack
    return Q(assignment__queue=queue) & ~check_of_gpu_pack


def queue_for(pack_queue: str, via: str) -> str:
    queue = pack_queue or "cpu"
    return "cpu" if queue == "gpu" and via == CHECK_VIA and settings.GPU_CHECKS_ON_CPU else queue


def send(name: str, args: list, queue: str):
    """Send the registered task ``name`` with ``args`` to ``queue``; returns Celery's AsyncResult."""
    return app.tasks[name].apply_async(args=args, queue=queue)


def run_here(name: str, args: list):
    """Run the registered task ``name`` in this process, now (Celery's eager ``apply``: the same task
    body and signals a worker runs); returns Celery's EagerResult. For ``manage.py load_demo``, which
    grades its demo submissions while it loads them."""
    return app.tasks[name].apply(args=args)
