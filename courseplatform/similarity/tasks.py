"""Celery tasks of the similarity check. The beat entry (similarity-due-checks) is in settings."""
from __future__ import annotations

import logging

from celery import shared_task
from django.db import transaction
from django.db.utils import InterfaceError, OperationalError
from django.utils import timezone

from .models import SimilarityCheck, SimilaritySettings

logger = logging.getLogger(__name__)
RUN_TASK = "similarity.run_check"
DUE_TASK = "similarity.run_due_checks"


@shared_task(bind=True, name=RUN_TASK, acks_late=True, reject_on_worker_lost=True, max_retries=3, ignore_result=True)
def run_check(self, check_id: int) -> str:
    """Compare an assignment's latest submissions (services.run). Idempotent: a redelivered check
    is computed again from the cached fingerprints and replaces its pairs."""
    from . import services

    check = SimilarityCheck.objects.select_related("assignment").filter(pk=check_id).first()
    if check is None or check.state == SimilarityCheck.State.DONE:
        return "missing" if check is None else "done"
    try:
        services.run(check)
        return "done"
    except (OperationalError, InterfaceError) as exc:
        if self.request.retries < self.max_retries and not self.request.is_eager:
            raise self.retry(exc=exc, countdown=10 * 2 ** self.request.retries)
        message = f"The database was not reachable ({type(exc).__name__}). Start the check again."
    except Exception as exc:  # noqa: BLE001  a crash is shown on the page, never retried forever
        logger.exception("similarity check %s failed", check_id)
        message = f"The check failed: {type(exc).__name__}: {str(exc)[:300]}"
    SimilarityCheck.objects.filter(pk=check_id).update(state=SimilarityCheck.State.ERROR, stage="",
                                                       message=message, finished_at=timezone.now())
    return "error"


@shared_task(name=DUE_TASK, ignore_result=True)
def run_due_checks() -> int:
    """Beat: start the automatic check of each assignment that asks for one once no more
    submissions are accepted (deadline, extensions and late cut-off passed). Once per assignment."""
    from . import services

    started = 0
    now = timezone.now()
    for s in SimilaritySettings.objects.filter(run_after_deadline=True, auto_run_at__isnull=True).select_related(
            "assignment"):
        until = services.accepts_until(s.assignment)
        if until is None or until > now:
            continue
        with transaction.atomic():
            # claim it: two beats (or a slow run) never start it twice
            if SimilaritySettings.objects.filter(pk=s.pk, auto_run_at__isnull=True).update(auto_run_at=now) != 1:
                continue
            services.start_check(s.assignment, None)
        started += 1
    return started
