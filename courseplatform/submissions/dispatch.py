"""The one module of the submissions app that sends Celery tasks.

A task is looked up in Celery's registry by the stable name it is declared with in ``tasks.py``
(``@shared_task(name=...)``), so the modules that send (services.py, packs.py, queue.py) never import
``tasks.py``, while ``tasks.py`` imports them at the top of its file: imports run one way,
tasks → services/packs/queue → dispatch. ``SubmissionsConfig.ready()`` imports ``tasks.py``, so the
registry holds these tasks in every process (web, worker, tests in eager mode run the same objects).
"""
from __future__ import annotations

from courseplatform.celery import app

SUBMISSION_KIND = "submission"  # the grading kind (courseplatform/grading) of a Submission
GRADE_SUBMISSION = "submissions.grade_submission"
CHECK_PACK_UPLOAD = "submissions.check_pack_upload"


def send(name: str, args: list, queue: str):
    """Send the registered task ``name`` with ``args`` to ``queue``; returns Celery's AsyncResult."""
    return app.tasks[name].apply_async(args=args, queue=queue)
