"""The one module of the quizzes app that sends Celery tasks (see submissions/dispatch.py: the task
is looked up by its registered name, so services.py never imports tasks.py and tasks.py imports
services.py at the top of its file; QuizzesConfig.ready() registers the tasks)."""
from __future__ import annotations

from courseplatform.celery import app

GRADE_CODE_ANSWER = "courseplatform.quizzes.tasks.grade_code_answer"  # the default name it has always had
RUN_CODE_CHECK = "courseplatform.quizzes.tasks.run_code_check"


def send(name: str, args: list, queue: str):
    """Send the registered task ``name`` with ``args`` to ``queue``; returns Celery's AsyncResult."""
    return app.tasks[name].apply_async(args=args, queue=queue)
