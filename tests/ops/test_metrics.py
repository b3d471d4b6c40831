"""Metrics (issue 27, item 3): /metrics in the Prometheus format, protected; a grade, a sandbox limit
hit and a failed task each move their metric, counted by the process that saw them (a real Celery
worker) and read by the web; the staff queue page and the metrics read the same numbers."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from cp_helpers import py
from cp_workers import purge, start_worker, stop_worker, wait_for
from courseplatform.submissions import services, tasks
from courseplatform.submissions.models import Submission

TOKEN = "metrics-token-for-tests-0123456789"


def scrape(client) -> dict[tuple, float]:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture(autouse=True)
def _token(settings):
    settings.METRICS_TOKEN = TOKEN


@pytest.mark.django_db
def test_metrics_need_the_scrapers_token_or_an_administrator(client, client_for, student, instructor, make_user,
                                                              settings):
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token").status_code == 403
    assert client_for(student).get("/metrics").status_code == 403
    assert client_for(instructor).get("/metrics").status_code == 403  # course staff are not site operators
    admin = make_user("root", is_staff=True, is_superuser=True)
    assert client_for(admin).get("/metrics").status_code == 200
    assert "courseplatform_queue_depth" in client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    settings.METRICS_TOKEN = ""  # no token configured: no bearer opens it, not even an empty one
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 403


@pytest.mark.django_db
def test_queue_metrics_and_the_staff_queue_page_read_the_same_numbers(assignment, student, other_student,
                                                                      instructor, client_for, client):
    now = timezone.now()
    for user, minutes in ((student, 7), (other_student, 3)):
        Submission.objects.create(assignment=assignment, student=user, sha256="0" * 64, blob="x", original_name="t.py",
                                  kind="py", size=1, state="queued", queued_at=now - timedelta(minutes=minutes))
    Submission.objects.create(assignment=assignment, student=student, sha256="1" * 64, blob="x", original_name="t.py",
                              kind="py", size=1, state="running", started_at=now - timedelta(seconds=50),
                              heartbeat_at=now - timedelta(seconds=40), worker="w1@host pid 12")
    samples = scrape(client)
    assert value(samples, "courseplatform_queue_depth", queue="cpu") == 2
    assert 7 * 60 <= value(samples, "courseplatform_queue_oldest_age_seconds", queue="cpu") < 8 * 60
    assert value(samples, "courseplatform_grading_running", queue="cpu") == 1
    assert 40 <= value(samples, "courseplatform_grading_lease_age_seconds", queue="cpu") < 100
    assert 40 <= value(samples, "courseplatform_worker_last_heartbeat_seconds", worker="w1@host") < 100
    page = client_for(instructor).get("/courses/llms/assignments/queue/")
    assert page.status_code == 200
    cpu = next(q for q in page.context["queues"] if q["queue"] == "cpu")
    assert (cpu["waiting"], cpu["running"]) == (2, 1)


@pytest.mark.django_db
def test_request_latency_and_responses_per_view(client, client_for, student):
    client_for(student).get("/courses/llms/assignments/")
    client.get("/courses/llms/assignments/no-such-assignment/")
    samples = scrape(client)
    counts = {k: v for k, v in samples.items() if k[0] == "django_http_requests_latency_seconds_by_view_method_count"}
    assert any(dict(labels).get("view") == "submissions:index" and v >= 1 for (_, labels), v in counts.items()), counts


@pytest.mark.django_db
def test_a_grade_a_limit_hit_and_an_infrastructure_fault_move_their_metrics(course, student, tmp_path, client,
                                                                            settings):
    """The real engine, in this process: a correct file, a file that never returns (the sandbox's time
    limit), and a pack that went missing from trusted storage (an infrastructure fault)."""
    from cp_helpers import write_pack
    from courseplatform.submissions.sync import sync_pack

    pack = write_pack(tmp_path / "assignments")
    (pack / "assignment.toml").write_text((pack / "assignment.toml").read_text() + "case_s = 2\n")
    assignment, _ = sync_pack(course, pack)
    assignment.due_at = timezone.now() + timedelta(days=3)
    assignment.save()
    before = scrape(client)

    def grade(text: str):
        sub = services.submit(assignment, student, py(text=text), is_staff=False)
        assert tasks.grade_submission.apply(args=[sub.pk, sub.generation]).get() == "saved"
        sub.refresh_from_db()
        return sub

    assert grade("def double(x):\n    return 2 * x\n").score == 10
    looping = grade("def double(x):\n    while True:\n        pass\n")
    assert looping.score == 0 and any(t["status"] == "timeout" for t in looping.result["tests"])
    after = scrape(client)
    graded = ("courseplatform_grading_results_total", dict(queue="cpu", kind="submission", status="graded"))
    assert value(after, graded[0], **graded[1]) == value(before, graded[0], **graded[1]) + 2
    hits = ("courseplatform_sandbox_limit_hits_total", dict(queue="cpu", kind="submission", limit="time"))
    assert value(after, hits[0], **hits[1]) == value(before, hits[0], **hits[1]) + 1
    latency = "courseplatform_grading_latency_seconds_count"
    assert value(after, latency, queue="cpu") == value(before, latency, queue="cpu") + 2
    assert value(after, "courseplatform_grading_latency_seconds_bucket", queue="cpu", le="+Inf") == \
        value(after, latency, queue="cpu")

    assignment.pack_path = str(tmp_path / "gone")
    assignment.save()
    sub = services.submit(assignment, student, py(text="def double(x):\n    return 2 * x\n"), is_staff=False)
    assert tasks.grade_submission.apply(args=[sub.pk, sub.generation]).get() == "infrastructure-error"
    fault = ("courseplatform_grading_results_total", dict(queue="cpu", kind="submission", status="infrastructure_fault"))
    assert value(scrape(client), fault[0], **fault[1]) == value(after, fault[0], **fault[1]) + 1


@pytest.mark.django_db
def test_a_task_that_raises_moves_the_failed_task_metric(client):
    before = scrape(client)
    outcome = tasks.grade_submission.apply(args=["not-a-number", 1])
    assert outcome.failed()
    name = "courseplatform_celery_tasks_total"
    labels = dict(task="submissions.grade_submission", outcome="failure")
    assert value(scrape(client), name, **labels) == value(before, name, **labels) + 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_a_real_workers_grades_are_counted_where_the_web_reads_them(assignment, student, client, tmp_path):
    """Counted by the Celery worker process, read by the web process: the counters live in the database."""
    if not django_settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.fail("this test needs the Redis broker")
    purge(("cpu", "gpu", "ops"))
    before = scrape(client)
    subs = [services.submit(assignment, student, py(name=f"s{k}.py", text=f"def double(x): return 2*x\n# SCORE={k}\n"),
                            is_staff=False) for k in (10, 4)]
    worker = start_worker("metrics", tmp_path / "metrics.log", COURSEPLATFORM_GRADE_FUNCTION="cp_fake_grader.grade")
    try:
        wait_for(lambda: Submission.objects.filter(pk__in=[s.pk for s in subs], state="graded").count() == 2, 120,
                 what="the worker to grade both")
    finally:
        stop_worker(worker)
    after = scrape(client)
    name, labels = "courseplatform_grading_results_total", dict(queue="cpu", kind="submission", status="graded")
    assert value(after, name, **labels) == value(before, name, **labels) + 2, (tmp_path / "metrics.log").read_text()[-2000:]


@pytest.mark.django_db
def test_every_metric_the_ready_made_dashboard_queries_is_exported(assignment, student, client):
    """docker/monitoring/grafana-dashboard.json: each metric name in its queries is one /metrics serves
    once the site has graded something and answered a request (a renamed metric fails here)."""
    import json
    import re
    from pathlib import Path

    from courseplatform.ops import metrics

    client.get("/accounts/login/")
    metrics.record_result("cpu", "submission", "graded", {"tests": [{"status": "timeout", "message": ""}]}, 3.0)
    metrics.record_task("submissions.grade_submission", "failure")
    Submission.objects.create(assignment=assignment, student=student, sha256="1" * 64, blob="x", original_name="t.py",
                              kind="py", size=1, state="running", started_at=timezone.now(),
                              heartbeat_at=timezone.now(), worker="w1@host pid 12")
    exported = {name for name, _ in scrape(client)}
    dashboard = json.loads((Path(__file__).resolve().parents[2] / "docker" / "monitoring" /
                            "grafana-dashboard.json").read_text())
    queried = {name for panel in dashboard["panels"] for target in panel["targets"]
               for name in re.findall(r"\b((?:courseplatform|django)_[a-z_]+)\b", target["expr"])}
    assert len(queried) >= 10
    assert queried <= exported, sorted(queried - exported)
