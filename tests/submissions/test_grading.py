"""The task's state machine, on-commit dispatch and routing, regrades, staff pages, roles, export."""
from __future__ import annotations

import io
import zipfile
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from cp_helpers import py
from courseplatform.grading import engine, jobs
from courseplatform.submissions import services, tasks
from courseplatform.submissions.models import Submission

pytestmark = pytest.mark.django_db


def make_sub(assignment, student, text="# SCORE=10", state="queued", **kw):
    from courseplatform.submissions.validation import check_upload

    up = py(text=text)
    checked = check_upload(up, ["py"])
    rel, _ = services.store_blob(up, checked)
    return Submission.objects.create(
        assignment=assignment, student=student, sha256=checked.sha256, blob=rel, original_name="tiny.py",
        kind="py", size=checked.size, state=state, max_score=10, **kw,
    )


@pytest.fixture
def fake_engine(monkeypatch):
    import cp_fake_grader

    calls = []

    def grade(*a):
        calls.append(a)
        return cp_fake_grader.grade(*a)

    monkeypatch.setattr(engine, "grade_function", lambda: grade)
    return calls


def run(sub):
    return tasks.grade_submission.apply(args=[sub.pk, sub.generation]).get()


def test_task_grades_and_is_idempotent(assignment, student, fake_engine):
    sub = make_sub(assignment, student, "# SCORE=9")
    assert run(sub) == "saved"
    sub.refresh_from_db()
    assert sub.state == "graded" and sub.score == 9 and sub.deliveries == 1 and sub.started_at and sub.finished_at
    assert sub.result["tests"][1]["visible"] is False
    # A redelivered task for a graded submission does nothing.
    assert run(sub) == "already-final"
    assert len(fake_engine) == 1


def test_redelivery_after_a_dead_worker_grades_again(assignment, student, fake_engine):
    sub = make_sub(assignment, student, state="running", deliveries=1, started_at=timezone.now())
    assert run(sub) == "saved"
    sub.refresh_from_db()
    assert sub.state == "graded" and sub.deliveries == 2


def test_poison_submission_is_stopped_after_max_deliveries(assignment, student, fake_engine):
    sub = make_sub(assignment, student, state="running", deliveries=tasks.MAX_DELIVERIES)
    assert run(sub) == "gave-up"
    sub.refresh_from_db()
    assert sub.state == "error" and "interrupted 3 times" in sub.message and fake_engine == []


def test_stale_generation_is_ignored(assignment, student, fake_engine):
    sub = make_sub(assignment, student)
    assert tasks.grade_submission.apply(args=[sub.pk, sub.generation - 1 or 99]).get() == "stale"
    assert fake_engine == []


def test_engine_error_result_becomes_error_with_message(assignment, student, fake_engine):
    sub = make_sub(assignment, student, "STATUS=error")
    run(sub)
    sub.refresh_from_db()
    assert sub.state == "error" and "SyntaxError" in sub.message and sub.score == 0


def test_infrastructure_fault_retries_then_reports(assignment, student, fake_engine, monkeypatch):
    """Non-eager: the task asks Celery to retry (bounded); after the last retry it is an error."""
    sub = make_sub(assignment, student, "CRASH_ENGINE")
    from celery.exceptions import Retry

    task = tasks.grade_submission
    monkeypatch.setattr(task, "retry", lambda exc=None, countdown=None: Retry("retry", exc=exc))
    task.push_request(retries=0, is_eager=False, id="t1", hostname="w1")
    try:
        with pytest.raises(Retry):
            task.run(sub.pk, sub.generation)
        sub.refresh_from_db()
        assert sub.state == "queued" and sub.retries == 1 and "try again" in sub.message
    finally:
        task.pop_request()
    task.push_request(retries=tasks.MAX_RETRIES, is_eager=False, id="t1", hostname="w1")
    try:
        assert task.run(sub.pk, sub.generation) == "infrastructure-error"
    finally:
        task.pop_request()
    sub.refresh_from_db()
    assert sub.state == "error" and "problem on our side" in sub.message and "not your fault" in sub.message


def test_missing_pack_is_an_infrastructure_error_not_the_students(assignment, student, fake_engine):
    assignment.pack_path = "/nonexistent/pack"
    assignment.save()
    sub = make_sub(assignment, student)
    run(sub)
    sub.refresh_from_db()
    assert sub.state == "error" and "problem on our side" in sub.message and fake_engine == []


def test_task_is_sent_on_commit_and_routed_to_the_pack_queue(client_for, student, assignment, django_capture_on_commit_callbacks, monkeypatch):
    assignment.queue = "gpu"
    assignment.save()
    sent = []
    monkeypatch.setattr(tasks.grade_submission, "apply_async", lambda args, queue: sent.append((args, queue)) or type("R", (), {"id": "tid"})())
    url = reverse("submissions:submit", args=[assignment.course.slug, assignment.slug])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        client_for(student).post(url, {"file": py()})
        assert sent == []  # nothing sent before the transaction commits
    assert len(callbacks) == 1
    callbacks[0]()
    sub = Submission.objects.get()
    assert sent == [([sub.pk, sub.generation], "gpu")]
    assert sub.task_id == "tid"


def test_failed_transaction_sends_nothing_and_removes_the_blob(student, assignment, monkeypatch, blobs):
    sent = []
    monkeypatch.setattr(tasks.grade_submission, "apply_async", lambda *a, **k: sent.append(a))
    monkeypatch.setattr(Submission.objects, "create", lambda **kw: (_ for _ in ()).throw(RuntimeError("db down")))
    with pytest.raises(RuntimeError):
        services.submit(assignment, student, py(), is_staff=False)
    assert sent == [] and blobs() == []


# --- hidden tests ---------------------------------------------------------------------------


def test_hidden_tests_show_points_not_details_until_released_after_deadline(client_for, student, instructor, assignment, fake_engine):
    sub = make_sub(assignment, student, "# SCORE=7")
    run(sub)
    url = reverse("submissions:status", args=[assignment.course.slug, sub.pk])
    html = client_for(student).get(url).content.decode()
    assert "Hidden test 1" in html and "1 / 4" in html
    assert "SECRET-CASE" not in html and "SECRET-MESSAGE" not in html
    staff_html = client_for(instructor).get(url).content.decode()
    assert "SECRET-CASE" in staff_html and "SECRET-MESSAGE" in staff_html
    # Released, but before the deadline: still hidden. After the deadline: shown.
    assignment.release_hidden_details = True
    assignment.save()
    assert "SECRET-CASE" not in client_for(student).get(url).content.decode()
    assignment.due_at = timezone.now() - timedelta(minutes=1)
    assignment.save()
    assert "SECRET-MESSAGE" in client_for(student).get(url).content.decode()


def test_polling_stops_once_final(client_for, student, assignment, fake_engine):
    sub = make_sub(assignment, student)
    url = reverse("submissions:status", args=[assignment.course.slug, sub.pk])
    assert 'hx-trigger="every 1s"' in client_for(student).get(url).content.decode()
    run(sub)
    assert "hx-trigger" not in client_for(student).get(url).content.decode()


# --- roles ------------------------------------------------------------------------------------


def test_students_cannot_see_each_others_submissions(client_for, student, other_student, assignment, fake_engine):
    sub = make_sub(assignment, student)
    run(sub)
    bob = client_for(other_student)
    slug = assignment.course.slug
    for name in ("status", "file"):
        assert bob.get(reverse(f"submissions:{name}", args=[slug, sub.pk])).status_code == 404
    assert bob.get(reverse("submissions:artifact", args=[slug, sub.pk, 0])).status_code == 404
    alice = client_for(student)
    got = alice.get(reverse("submissions:file", args=[slug, sub.pk]))
    assert got.status_code == 200 and b"SCORE=10" in b"".join(got.streaming_content)
    assert "attachment" in got["Content-Disposition"]
    # Bob's own page does not list Alice's attempt.
    assert f"submission-{sub.pk}" not in bob.get(reverse("submissions:detail", args=[slug, assignment.slug])).content.decode()


def test_outsiders_and_anonymous_users(client, client_for, outsider, student, assignment):
    sub = make_sub(assignment, student)
    slug = assignment.course.slug
    for url in (
        reverse("submissions:index", args=[slug]),
        reverse("submissions:detail", args=[slug, assignment.slug]),
        reverse("submissions:status", args=[slug, sub.pk]),
        reverse("submissions:staff", args=[slug, assignment.slug]),
    ):
        assert client_for(outsider).get(url).status_code == 404
        r = client.get(url)
        assert r.status_code == 302 and "/accounts/login/" in r["Location"]


def test_staff_pages_refuse_students_and_tas_cannot_change_policy(client_for, student, ta, instructor, assignment):
    slug, a = assignment.course.slug, assignment.slug
    staff_urls = [reverse("submissions:staff", args=[slug, a]), reverse("submissions:export", args=[slug, a]),
                  reverse("submissions:staff_student", args=[slug, a, student.pk])]
    for url in staff_urls:
        assert client_for(student).get(url).status_code == 403
        assert client_for(ta).get(url).status_code == 200
    assert client_for(student).post(reverse("submissions:regrade", args=[slug, a]), {"scope": "all"}).status_code == 403
    for name in ("settings", "extensions"):
        url = reverse(f"submissions:{name}", args=[slug, a])
        assert client_for(ta).get(url).status_code == 403
        assert client_for(instructor).get(url).status_code == 200
    assert client_for(ta).post(reverse("submissions:resync", args=[slug, a])).status_code == 403


def test_other_course_submission_is_not_reachable_through_this_course(client_for, instructor, outsider, other_course, pack_dir):
    from courseplatform.submissions.sync import sync_pack

    other_a, _ = sync_pack(other_course, pack_dir)
    sub = make_sub(other_a, outsider)
    assert client_for(instructor).get(reverse("submissions:status", args=["llms", sub.pk])).status_code == 404


# --- staff --------------------------------------------------------------------------------


def test_staff_overview_lists_students_with_best_latest_and_histogram(client_for, ta, student, other_student, assignment, fake_engine):
    run(make_sub(assignment, student, "# SCORE=9", created_at=timezone.now() - timedelta(hours=2)))
    run(make_sub(assignment, student, "# SCORE=4"))
    html = client_for(ta).get(reverse("submissions:staff", args=[assignment.course.slug, assignment.slug])).content.decode()
    assert "<svg" in html and 'class="histogram"' in html and 'data-count="1"' in html
    row = html.split('data-student="alice"')[1].split("</tr>")[0]
    assert ">4<" in row and ">9<" in row and "<strong>9</strong>" in row  # latest 4, best 9, counted (best) 9
    assert 'data-student="bob"' in html and "not submitted" in html.split('data-student="bob"')[1].split("</tr>")[0]


def test_regrade_one_student_all(client_for, ta, student, other_student, assignment, fake_engine):
    a1 = make_sub(assignment, student)
    b1 = make_sub(assignment, other_student)
    run(a1), run(b1)
    url = reverse("submissions:regrade", args=[assignment.course.slug, assignment.slug])
    c = client_for(ta)
    c.post(url, {"scope": "submission", "submission": a1.pk})
    a1.refresh_from_db(), b1.refresh_from_db()
    assert a1.state == "queued" and a1.generation == 2 and b1.state == "graded"
    c.post(url, {"scope": "student", "student": other_student.pk})
    b1.refresh_from_db()
    assert b1.state == "queued" and b1.generation == 2
    c.post(url, {"scope": "all"})
    assert set(Submission.objects.values_list("generation", flat=True)) == {3}
    # The stale task of generation 1 is ignored; the current one grades.
    assert tasks.grade_submission.apply(args=[a1.pk, 1]).get() == "stale"
    a1.refresh_from_db()
    assert run(a1) == "saved"


def test_regrade_after_pack_change_uses_the_new_pack(client_for, instructor, student, assignment, pack_dir, fake_engine):
    sub = make_sub(assignment, student)
    run(sub)
    old_hash, old_path = assignment.pack_hash, assignment.pack_path
    (pack_dir / "tests.py").write_text((pack_dir / "tests.py").read_text() + "\n# tightened\n")
    client_for(instructor).post(reverse("submissions:resync", args=[assignment.course.slug, assignment.slug]), {"regrade": "all"})
    assignment.refresh_from_db()
    assert assignment.pack_hash != old_hash and assignment.pack_path != old_path
    sub.refresh_from_db()
    assert sub.state == "queued"
    run(sub)
    assert str(fake_engine[-1][0]) == assignment.pack_path


def test_export_streams_a_zip_of_latest_submissions(client_for, instructor, student, other_student, assignment, fake_engine):
    make_sub(assignment, student, "# first", created_at=timezone.now() - timedelta(hours=1))
    make_sub(assignment, student, "# second")
    make_sub(assignment, other_student, "# bob")
    r = client_for(instructor).get(reverse("submissions:export", args=[assignment.course.slug, assignment.slug]))
    assert r.status_code == 200 and r.streaming and r["Content-Type"] == "application/zip"
    z = zipfile.ZipFile(io.BytesIO(b"".join(r.streaming_content)))
    names = sorted(z.namelist())
    assert names == ["tiny/alice/tiny.py", "tiny/bob/tiny.py", "tiny/index.csv"]
    assert b"# second" in z.read("tiny/alice/tiny.py") and b"# bob" in z.read("tiny/bob/tiny.py")
    assert "alice" in z.read("tiny/index.csv").decode()


def test_instructor_sets_deadline_and_extension(client_for, instructor, student, assignment):
    slug, a = assignment.course.slug, assignment.slug
    c = client_for(instructor)
    r = c.post(reverse("submissions:settings", args=[slug, a]), {
        "released": "on", "due_at": "2030-01-10T12:00", "late_policy": "penalty", "grace_minutes": 0,
        "late_penalty_percent": 150, "late_cutoff_days": 2, "max_attempts": 5, "cooldown_seconds": 0,
        "max_queued_per_student": 2, "score_rule": "latest"})
    assert r.status_code == 200 and "between 0 and 100" in r.content.decode()
    r = c.post(reverse("submissions:settings", args=[slug, a]), {
        "released": "on", "due_at": "2030-01-10T12:00", "late_policy": "penalty", "grace_minutes": 0,
        "late_penalty_percent": 20, "late_cutoff_days": 2, "max_attempts": 5, "cooldown_seconds": 0,
        "max_queued_per_student": 2, "score_rule": "latest"})
    assert r.status_code == 302
    assignment.refresh_from_db()
    assert assignment.max_attempts == 5 and assignment.late_penalty_percent == 20 and assignment.due_at.year == 2030
    r = c.post(reverse("submissions:extensions", args=[slug, a]), {"student": student.pk, "due_at": "2030-01-01T12:00"})
    assert "must end after" in r.content.decode()
    c.post(reverse("submissions:extensions", args=[slug, a]), {"student": student.pk, "due_at": "2030-01-12T12:00", "reason": "ill"})
    assert assignment.due_for(student).day == 12


def test_sweeper_requeues_stuck_running(assignment, student, settings, monkeypatch):
    sent = []
    monkeypatch.setattr(jobs, "on_commit", lambda fn: sent.append(fn))
    fresh = make_sub(assignment, student, state="running", started_at=timezone.now(), deliveries=1)
    stuck = make_sub(assignment, student, state="running", started_at=timezone.now() - timedelta(seconds=assignment.wall_limit_s + 200), deliveries=1)
    from django.core.management import call_command

    out = io.StringIO()
    call_command("requeue_stuck", stdout=out)
    stuck.refresh_from_db(), fresh.refresh_from_db()
    assert stuck.state == "queued" and stuck.generation == 2 and stuck.deliveries == 1
    assert fresh.state == "running" and "Requeued 1" in out.getvalue() and len(sent) == 1


def test_gradebook_items_use_rule_and_penalty(assignment, student, other_student, ta, fake_engine):
    from courseplatform.submissions.gradebook import items

    run(make_sub(assignment, student, "# SCORE=9", created_at=timezone.now() - timedelta(hours=1)))
    late = make_sub(assignment, student, "# SCORE=10", created_at=assignment.due_at + timedelta(hours=3))
    run(late)
    run(make_sub(assignment, ta, "# SCORE=10", is_test_run=True))
    [item] = items(assignment.course)
    assert item.key == "assignment:tiny" and item.max_points == 10 and item.category == "assignments"
    # Best rule: 9 on time vs 10 late (−10% for one started day) = 9.0: both count 9.0.
    assert item.scores[student.pk] == pytest.approx(9.0)
    assert ta.pk not in item.scores
    assignment.score_rule = "latest"
    assignment.save()
    [item] = items(assignment.course)
    assert item.scores[student.pk] == pytest.approx(9.0) and "late 1d" in item.notes[student.pk]


def test_dashboard_panels(rf, assignment, student, instructor, fake_engine):
    from courseplatform.courses.models import Membership
    from courseplatform.submissions.dashboard import panels

    run(make_sub(assignment, student, "STATUS=error"))
    req = rf.get("/")
    req.user = student
    [p] = panels(req, assignment.course, Membership.objects.get(user=student))
    assert p.context["upcoming"][0]["a"] == assignment
    req.user = instructor
    [p] = panels(req, assignment.course, Membership.objects.get(user=instructor))
    assert len(p.context["errors"]) == 1
