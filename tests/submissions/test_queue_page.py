"""Issue 28, item 8: the staff grading-queue page asks the broker nothing (it took 2.1-2.3 s per
load: a synchronous Celery control ping); workers' liveness comes from the heartbeats the database
already holds (each running submission's lease, each result's worker name)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_broker_calls(monkeypatch):
    from courseplatform.celery import app

    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)  # recorded: a caller that swallows the error is still caught below
        raise AssertionError("the queue page asked the broker (a worker ping) during a request")

    for name in ("ping", "inspect", "broadcast"):
        monkeypatch.setattr(app.control, name, refuse)
    yield
    assert not calls, f"{len(calls)} broker control call(s) during the page loads"


def _sub(assignment, student, n, **fields):
    from courseplatform.submissions.models import Submission

    return Submission.objects.create(assignment=assignment, student=student, attempt=n, sha256="0" * 64, blob="x",
                                     original_name="solution.py", kind="py", size=10, **fields)


def test_queue_page_shows_live_and_stale_workers_without_a_ping(assignment, student, instructor, client_for,
                                                                no_broker_calls, settings):
    settings.GRADING_LEASE_S = 30
    now = timezone.now()
    _sub(assignment, student, 1, state="running", worker="celery@gpu-1 pid 10", started_at=now - timedelta(seconds=40),
         heartbeat_at=now - timedelta(seconds=3))
    _sub(assignment, student, 2, state="running", worker="celery@cpu-2 pid 20", started_at=now - timedelta(minutes=5),
         heartbeat_at=now - timedelta(minutes=4))
    _sub(assignment, student, 3, state="graded", score=1, max_score=2, worker="celery@cpu-3 pid 30",
         started_at=now - timedelta(minutes=3), finished_at=now - timedelta(minutes=2))
    _sub(assignment, student, 4, state="graded", score=1, max_score=2, worker="celery@old pid 40",
         started_at=now - timedelta(hours=3), finished_at=now - timedelta(hours=3))

    r = client_for(instructor).get(reverse("submissions:queue", args=[assignment.course.slug]))
    assert r.status_code == 200
    workers = {w["name"]: w for w in r.context["workers"]}
    assert workers["celery@gpu-1 pid 10"]["status"] == "grading" and workers["celery@gpu-1 pid 10"]["alive"]
    assert workers["celery@cpu-2 pid 20"]["status"] == "stale" and not workers["celery@cpu-2 pid 20"]["alive"]
    assert workers["celery@cpu-3 pid 30"]["status"] == "idle"
    assert "celery@old pid 40" not in workers  # no sign of life for hours: not listed
    body = r.content.decode()
    assert 'data-worker="celery@gpu-1 pid 10" data-status="grading"' in body
    assert 'data-worker="celery@cpu-2 pid 20" data-status="stale"' in body
    assert "1 grading now" in body and "1 stale" in body

    # The htmx refresh of the panel, every 5 s: the same facts, still no broker call.
    panel = client_for(instructor).get(reverse("submissions:queue", args=[assignment.course.slug]),
                                       HTTP_HX_REQUEST="true")
    assert panel.status_code == 200 and 'data-status="stale"' in panel.content.decode()


def test_queue_page_with_no_worker_seen_says_so(assignment, instructor, client_for, no_broker_calls):
    r = client_for(instructor).get(reverse("submissions:queue", args=[assignment.course.slug]))
    assert r.status_code == 200 and r.context["workers"] == []
    assert "No worker has graded in the last 30 minutes" in r.content.decode()
    assert "0 grading now" in r.content.decode()
