"""Fair share and the visible queue: tiers, broker priorities, position and ETA from measured
grading times (page, API, staff page), and a real worker on Redis taking first attempts before
resubmissions."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from ops_helpers import wait_for
from cp_helpers import py
from cp_workers import purge, start_worker, stop_worker
from courseplatform.grading import jobs, sweeper
from courseplatform.submissions import queue, services
from courseplatform.submissions.models import ApiToken, Submission


def make_sub(assignment, student, state="queued", created=None, **fields):
    now = timezone.now()
    created = created or now
    return Submission.objects.create(
        assignment=assignment, student=student, sha256="0" * 64, blob="x", original_name="a.py", kind="py", size=1,
        state=state, created_at=created, queued_at=fields.pop("queued_at", created), **fields)


def lost() -> list[int]:
    """The queued submissions whose message the broker lost (the sweeper's look, submission kind)."""
    return sweeper.lost_messages().get("submission", [])


def graded(assignment, student, seconds: float, ago: float = 600):
    end = timezone.now() - timedelta(seconds=ago)
    return make_sub(assignment, student, "graded", created=end - timedelta(seconds=seconds + 1),
                    started_at=end - timedelta(seconds=seconds), finished_at=end, score=1)


@pytest.mark.django_db
def test_tiers_count_the_students_submissions_of_the_last_hour(assignment, student, other_student):
    now = timezone.now()
    old = make_sub(assignment, student, "graded", created=now - timedelta(hours=2))
    a1 = make_sub(assignment, student, created=now - timedelta(minutes=20))
    a2 = make_sub(assignment, student, created=now - timedelta(minutes=10))
    a3 = make_sub(assignment, student, created=now)
    a4 = make_sub(assignment, student, created=now + timedelta(seconds=1))
    a5 = make_sub(assignment, student, created=now + timedelta(seconds=2))
    b1 = make_sub(assignment, other_student, created=now)
    assert [queue.tier_for(s) for s in (old, a1, a2, a3, a4, a5, b1)] == [0, 0, 1, 2, 3, 3, 0]
    staff_run = make_sub(assignment, student, created=now + timedelta(seconds=3), is_test_run=True)
    assert queue.tier_for(staff_run) == 0


def test_broker_priorities_put_first_attempts_first():
    assert [queue.broker_priority(t, "redis://x") for t in range(4)] == [0, 3, 6, 9]  # Redis: 0 first
    assert [queue.broker_priority(t, "amqp://x") for t in range(4)] == [9, 6, 3, 0]  # AMQP: 9 first


@pytest.mark.django_db
def test_router_sets_the_tier_and_priority_and_fair_share_can_be_off(assignment, student, settings):
    now = timezone.now()
    make_sub(assignment, student, created=now - timedelta(minutes=5))
    second = make_sub(assignment, student, created=now)
    route = queue.route_task(queue.GRADE_TASK, [second.pk, 1], {}, {})
    assert route == {"priority": queue.broker_priority(1)}
    second.refresh_from_db()
    assert second.fair_tier == 1
    assert queue.route_task("submissions.sweep_stuck", [], {}, {}) is None
    settings.FAIR_SHARE = False
    assert queue.route_task(queue.GRADE_TASK, [second.pk, 1], {}, {}) == {"priority": queue.broker_priority(0)}


@pytest.mark.django_db
def test_position_and_eta_from_measured_grading_times(assignment, student, other_student, make_user, course):
    from courseplatform.courses.models import Membership

    carol = make_user("carol")
    Membership.objects.create(course=course, user=carol, role="student")
    for _ in range(5):
        graded(assignment, other_student, 10.0)
    now = timezone.now()
    make_sub(assignment, carol, "running", created=now - timedelta(seconds=5), started_at=now - timedelta(seconds=4))
    b = make_sub(assignment, other_student, created=now - timedelta(seconds=3), fair_tier=0)
    a = make_sub(assignment, student, created=now - timedelta(seconds=2), fair_tier=2)
    c = make_sub(assignment, carol, created=now - timedelta(seconds=1), fair_tier=0)
    ib, ia, ic = (queue.queue_info(s, now=now) for s in (b, a, c))
    assert (ib.position, ic.position, ia.position) == (1, 2, 3)  # the resubmission waits behind c
    assert ia.typical_seconds == pytest.approx(10.0)
    # 6 s left on the running grade + b + c (10 s each), one slot in use
    assert (ia.estimated_start - now).total_seconds() == pytest.approx(26.0, abs=0.01)
    assert (ia.estimated_finish - now).total_seconds() == pytest.approx(36.0, abs=0.01)
    assert (ib.estimated_start - now).total_seconds() == pytest.approx(6.0, abs=0.01)
    assert "Position 3 in the cpu queue" in queue.queue_text(ia, now=now)
    done = make_sub(assignment, student, "graded", created=now, started_at=now, finished_at=now)
    assert queue.queue_info(done) is None


@pytest.mark.django_db
def test_page_api_and_staff_queue_show_it(assignment, student, other_student, instructor, client_for, client):
    for _ in range(3):
        graded(assignment, other_student, 20.0)
    now = timezone.now()
    make_sub(assignment, other_student, created=now - timedelta(seconds=5), fair_tier=0)
    mine = make_sub(assignment, student, created=now, fair_tier=0)
    page = client_for(student).get(reverse("submissions:detail", args=[assignment.course.slug, assignment.slug]))
    assert page.status_code == 200
    assert "Position 2 in the cpu queue" in page.content.decode()
    status = client_for(student).get(reverse("submissions:status", args=[assignment.course.slug, mine.pk]))
    assert "Position 2 in the cpu queue" in status.content.decode()  # the htmx partial, polled live

    key = ApiToken.issue(student)[1]
    r = client.get(f"/api/submissions/{mine.pk}", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert r.status_code == 200
    q = r.json()["queue"]
    assert q["position"] == 2 and q["ahead"] == 1 and q["typical_seconds"] == pytest.approx(20.0)
    assert q["text"].startswith("Position 2 in the cpu queue; starts in about")
    listing = client.get(f"/api/courses/{assignment.course.slug}/assignments/{assignment.slug}/submissions",
                         HTTP_AUTHORIZATION=f"Bearer {key}").json()
    assert [s["queue"]["position"] for s in listing if s["id"] == mine.pk] == [2]

    url = reverse("submissions:queue", args=[assignment.course.slug])
    assert client_for(student).get(url).status_code in (403, 404)
    staff = client_for(instructor).get(url)
    assert staff.status_code == 200
    body = staff.content.decode()
    assert "Grading queue" in body and "tiny" in body
    data = queue.staff_overview()
    cpu = next(q for q in data["queues"] if q["queue"] == "cpu")
    assert cpu["waiting"] == 2 and cpu["first_attempts"] == 2 and cpu["oldest_wait_s"] >= 5
    pack = next(p for p in data["packs"] if p["slug"] == "tiny")
    assert pack["count"] == 3 and pack["p50"] == pytest.approx(20.0)


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_takes_first_attempts_before_resubmissions(assignment, student, other_student, make_user,
                                                                  course, tmp_path):
    """Messages queued on Redis before the worker starts: three resubmissions of one student, then
    two other students' first attempts. One worker slot: the first attempts are graded first."""
    from courseplatform.courses.models import Membership

    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.fail("this test needs the Redis broker")
    purge(("cpu", "gpu", "ops"))
    assignment.max_queued_per_student = 10
    assignment.save()
    now = timezone.now()
    for k in range(2):  # earlier attempts of the hour (graded)
        make_sub(assignment, student, "graded", created=now - timedelta(minutes=30 - k), started_at=now, finished_at=now)
    resubs = [services.submit(assignment, student, py(name=f"r{k}.py", text=f"def double(x): return 2*x\n# SCORE={k}\n"),
                              is_staff=False) for k in range(3)]
    carol = make_user("carol")
    Membership.objects.create(course=course, user=carol, role="student")
    firsts = [services.submit(assignment, u, py(text="def double(x): return 2*x\n"), is_staff=False)
              for u in (other_student, carol)]
    ids = [s.pk for s in resubs + firsts]
    tiers = dict(Submission.objects.filter(pk__in=ids).values_list("pk", "fair_tier"))
    assert [tiers[s.pk] for s in resubs] == [2, 3, 3] and [tiers[s.pk] for s in firsts] == [0, 0]
    worker = start_worker("fair", tmp_path / "fair.log", COURSEPLATFORM_GRADE_FUNCTION="cp_fake_grader.grade")
    try:
        wait_for(lambda: Submission.objects.filter(pk__in=ids, state="graded").count() == 5, 180,
                 what="the worker to grade all five")
    finally:
        stop_worker(worker)
    order = list(Submission.objects.filter(pk__in=ids).order_by("started_at").values_list("pk", flat=True))
    assert set(order[:2]) == {s.pk for s in firsts}, (tmp_path / "fair.log").read_text()[-2000:]
    assert order[2] == resubs[0].pk  # tier 2 before tier 3


def test_broker_marker_tells_when_the_broker_lost_its_messages():
    """The marker message stays while the broker keeps its messages; a Redis restart without
    persistence (simulated: this run's keys flushed) removes it, and the next check says so."""
    from courseplatform.celery import app

    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.fail("this test needs the Redis broker")
    with app.connection_for_write() as conn:
        conn.default_channel.client.delete(sweeper.MARKER_QUEUE)  # the client adds this run's key prefix
    assert sweeper.broker_lost_messages() is True  # nothing there yet
    assert sweeper.broker_lost_messages() is False
    assert sweeper.broker_lost_messages() is False
    with app.connection_for_write() as conn:
        assert conn.default_channel.client.delete(sweeper.MARKER_QUEUE) == 1
    assert sweeper.broker_lost_messages() is True
    assert sweeper.broker_lost_messages() is False


@pytest.mark.django_db
def test_lost_messages_are_found_in_the_redis_broker(assignment, student):
    """A queued submission's message is looked up in the queue lists and the unacknowledged hash:
    missing (a worker killed between BRPOP and recording it, a broker restart) or held unstarted by
    a dead consumer for too long -> lost; waiting, or just delivered -> not lost."""
    import json
    import time as _time

    import redis

    from courseplatform.celery import app
    from courseplatform.submissions.tasks import grade_submission

    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.fail("this test needs the Redis broker")
    purge(("cpu", "gpu", "ops"))
    old = timezone.now() - timedelta(seconds=sweeper.LOST_GRACE_S + 30)
    sub = make_sub(assignment, student, created=old)
    fresh = make_sub(assignment, student, created=timezone.now())
    assert lost() == [sub.pk]  # never sent; the fresh one is within the grace
    grade_submission.apply_async(args=[sub.pk, sub.generation], queue="cpu", priority=3)
    assert lost() == []  # waiting in the cpu list of priority 3

    prefix = app.conf.broker_transport_options["global_keyprefix"]
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    key = f"{prefix}cpu\x06\x163"
    raw = client.rpop(key)  # a consumer took it ...
    assert raw and client.llen(key) == 0
    assert lost() == [sub.pk]  # ... and died before recording it
    tag = "tag-1"
    client.hset(f"{prefix}unacked", tag, json.dumps([json.loads(raw), "", "cpu"]))
    client.zadd(f"{prefix}unacked_index", {tag: _time.time()})
    assert lost() == []  # held by a consumer that has just taken it
    client.zadd(f"{prefix}unacked_index", {tag: _time.time() - sweeper.UNACKED_GRACE_S - 5})
    assert lost() == [sub.pk]  # held, never started, for too long: its consumer is dead
    client.delete(f"{prefix}unacked", f"{prefix}unacked_index")
    assert fresh.pk not in lost()

    done = sweeper.recover()
    sub.refresh_from_db()
    assert done["resent"] == 1 and sub.generation == 2 and sub.state == "queued"


@pytest.mark.django_db
def test_only_running_submissions_with_a_lapsed_lease_are_requeued(assignment, student, settings):
    settings.GRADING_LEASE_S = 30
    now = timezone.now()
    alive = make_sub(assignment, student, "running", created=now - timedelta(minutes=5),
                     started_at=now - timedelta(minutes=5), heartbeat_at=now - timedelta(seconds=5), deliveries=1)
    dead = make_sub(assignment, student, "running", created=now - timedelta(minutes=5),
                    started_at=now - timedelta(minutes=5), heartbeat_at=now - timedelta(seconds=45), deliveries=1)
    never = make_sub(assignment, student, "running", created=now - timedelta(minutes=2),
                     started_at=now - timedelta(seconds=40), deliveries=1)
    young = make_sub(assignment, student, "running", created=now, started_at=now - timedelta(seconds=3), deliveries=1)
    assert sorted(sweeper.lapsed_leases(jobs.KINDS["submission"], now)) == sorted([dead.pk, never.pk])
    before = now - timedelta(seconds=30)
    Submission.objects.filter(pk=dead.pk).update(heartbeat_at=now)  # a heartbeat came meanwhile
    assert jobs.requeue("submission", [dead.pk, never.pk], "again", lapsed_before=before) == 1
    rows = {s.pk: s for s in Submission.objects.filter(pk__in=[alive.pk, dead.pk, never.pk, young.pk])}
    assert rows[never.pk].state == "queued" and rows[never.pk].generation == 2 and rows[never.pk].deliveries == 1
    assert rows[never.pk].message == "again"
    assert all(rows[pk].state == "running" and rows[pk].generation == 1 for pk in (alive.pk, dead.pk, young.pk))


@pytest.mark.django_db
def test_staff_assignment_page_links_to_the_queue(assignment, instructor, client_for):
    page = client_for(instructor).get(reverse("submissions:staff", args=[assignment.course.slug, assignment.slug]))
    assert page.status_code == 200
    assert reverse("submissions:queue", args=[assignment.course.slug]) in page.content.decode()
