"""Uploading from the browser: accepted files are stored and graded; every bad input is refused
with a clear message and leaves nothing stored."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from cp_helpers import notebook, py, zip_bytes
from courseplatform.submissions.models import Extension, Submission

pytestmark = pytest.mark.django_db


def submit_url(a):
    return reverse("submissions:submit", args=[a.course.slug, a.slug])


def detail_url(a):
    return reverse("submissions:detail", args=[a.course.slug, a.slug])


def post(client, a, upload):
    return client.post(submit_url(a), {"file": upload}, follow=True)


def messages_of(response):
    return [str(m) for m in response.context["messages"]] if response.context else []


def test_student_page_shows_handout_deadline_policy_attempts_and_starters(client_for, student, assignment):
    assignment.max_attempts = 3
    assignment.save()
    r = client_for(student).get(detail_url(assignment))
    html = r.content.decode()
    assert r.status_code == 200
    assert "Implement <code>double(x)</code>" in html
    assert "<script>alert(1)</script>" not in html  # sanitised handout
    assert timezone.localtime(assignment.due_at).strftime("%d.%m.%Y %H:%M") in html
    assert "per started day" in html and "3 of 3 left" in html
    for kind in ("py", "ipynb"):
        url = reverse("submissions:starter", args=[assignment.course.slug, assignment.slug, kind])
        assert url in html
        got = client_for(student).get(url)
        assert got.status_code == 200 and b"NotImplementedError" in b"".join(got.streaming_content)
    # The pack's trusted files are never downloadable.
    bad = client_for(student).get(f"/courses/{assignment.course.slug}/assignments/{assignment.slug}/starter.toml")
    assert bad.status_code == 404


def test_upload_py_is_stored_queued_then_graded(client_for, student, assignment, eager, blobs):
    r = post(client_for(student), assignment, py(text="def double(x): return 2*x\n# SCORE=7\n"))
    assert r.status_code == 200
    sub = Submission.objects.get()
    assert sub.state == "graded" and sub.score == 7 and sub.max_score == 10 and sub.attempt == 1
    assert sub.kind == "py" and sub.original_name == "tiny.py" and not sub.is_test_run
    assert len(blobs()) == 1 and blobs()[0].name == f"{sub.sha256}.py"
    assert any("queued for grading" in m for m in messages_of(r))
    html = r.content.decode()
    assert f'id="submission-{sub.pk}"' in html and "shapes and values on 2-D input" in html


def test_same_file_twice_is_stored_once(client_for, student, assignment, eager, blobs):
    c = client_for(student)
    post(c, assignment, py())
    post(c, assignment, py())
    assert Submission.objects.count() == 2 and len(blobs()) == 1
    assert [s.attempt for s in Submission.objects.order_by("id")] == [1, 2]


@pytest.mark.parametrize(
    "name,data,message",
    [
        ("tiny.txt", b"print(1)", "is not a file this assignment accepts"),
        ("tiny.exe", b"MZ\x90\x00", "is not a file this assignment accepts"),
        ("tiny.py", b"", "is empty"),
        ("tiny.py", b"\xff\xfe\x00b\x00a\x00d", "not a Python source file"),
        ("tiny.ipynb", b"{not json", "is not JSON"),
        ("tiny.ipynb", json.dumps(notebook("x=1", major=3)).encode(), "notebook format 3"),
        ("tiny.ipynb", json.dumps({"cells": "nope", "nbformat": 4, "nbformat_minor": 4, "metadata": {}}).encode(), "not a valid format-4 notebook"),
        ("tiny.zip", b"PK\x03\x04garbage", "not a valid zip"),
        ("tiny.zip", zip_bytes({"../../evil.py": b"x=1"}), "escapes the folder"),
        ("tiny.zip", zip_bytes({"/etc/cron.d/x.py": b"x=1"}), "an absolute path"),
        ("tiny.zip", zip_bytes({"tiny.py": b"0" * 8_000_000}), "zip bomb"),
        ("tiny.zip", zip_bytes({"readme.txt": b"hi"}), "contains no .py or .ipynb"),
    ],
    ids=["txt", "exe", "empty", "binary-py", "ipynb-not-json", "nbformat3", "ipynb-bad-structure", "zip-garbage",
         "zip-escape", "zip-absolute", "zip-bomb", "zip-no-code"],
)
def test_bad_input_is_refused_with_a_message_and_nothing_stored(client_for, student, assignment, eager, blobs, name, data, message):
    r = post(client_for(student), assignment, SimpleUploadedFile(name, data))
    assert r.status_code == 200
    assert any(message in m for m in messages_of(r)), messages_of(r)
    assert Submission.objects.count() == 0
    assert blobs() == []


def test_zip_with_declared_sizes_that_lie_is_caught_while_decompressing(client_for, student, assignment, eager, blobs):
    import io
    import zipfile

    data = bytearray(zip_bytes({"tiny.py": b"A" * 2_000_000}))
    # Patch the central directory's uncompressed size down to 10 bytes: only decompression reveals the truth.
    zf = zipfile.ZipFile(io.BytesIO(bytes(data)))
    info = zf.infolist()[0]
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 24 : cd + 28] = (10).to_bytes(4, "little")
    r = post(client_for(student), assignment, SimpleUploadedFile("tiny.zip", bytes(data)))
    assert any("zip bomb" in m or "damaged" in m for m in messages_of(r)), messages_of(r)
    assert Submission.objects.count() == 0 and blobs() == []
    assert info.file_size == 2_000_000


def test_over_size_upload_is_stopped_while_streaming(client_for, student, assignment, eager, blobs):
    r = client_for(student).post(submit_url(assignment), {"file": py(text="x" * (64 * 1024 + 10))})
    assert r.status_code == 413 and "larger than the limit" in r.content.decode()
    assert Submission.objects.count() == 0 and blobs() == []


def test_good_zip_and_notebook_are_accepted(client_for, student, assignment, eager):
    c = client_for(student)
    post(c, assignment, SimpleUploadedFile("sol.zip", zip_bytes({"sol/tiny.py": b"def double(x): return 2*x\n"})))
    post(c, assignment, SimpleUploadedFile("tiny.ipynb", json.dumps(notebook("def double(x): return 2*x")).encode()))
    assert sorted(Submission.objects.values_list("kind", flat=True)) == ["ipynb", "zip"]


def test_oversized_body_is_refused_before_it_is_read(client_for, student, assignment, blobs):
    """A Content-Length above the limit gets 413 at once: the body is never parsed."""
    c = client_for(student)
    r = c.generic(
        "POST", submit_url(assignment), data=b"x" * 10,
        content_type="multipart/form-data; boundary=BoUnDaRy", CONTENT_LENGTH=str(50 * 1024 * 1024),
    )
    assert r.status_code == 413
    assert b"larger than the limit" in r.content
    assert Submission.objects.count() == 0 and blobs() == []


def test_streaming_limit_stops_a_lying_content_length(rf, student, assignment, settings):
    """If the declared length is small but the body is large, the handler stops at the limit."""
    from django.core.files.uploadhandler import StopUpload

    from courseplatform.submissions.uploads import SizeLimitUploadHandler

    request = rf.post("/")
    handler = SizeLimitUploadHandler(request, limit=1000)
    handler.receive_data_chunk(b"x" * 600, 0)
    with pytest.raises(StopUpload):
        handler.receive_data_chunk(b"x" * 600, 600)
    assert request.upload_too_large is True


def test_csrf_is_still_enforced_on_upload(student, assignment):
    from django.test import Client

    c = Client(enforce_csrf_checks=True)
    c.force_login(student)
    r = c.post(submit_url(assignment), {"file": py()})
    assert r.status_code == 403 and Submission.objects.count() == 0


# --- deadlines and policy ---------------------------------------------------------------------


def test_late_when_closed_is_refused(client_for, student, assignment, eager, blobs):
    assignment.due_at = timezone.now() - timedelta(minutes=5)
    assignment.late_policy = "closed"
    assignment.save()
    r = post(client_for(student), assignment, py())
    assert any("accepts no late work" in m for m in messages_of(r))
    assert Submission.objects.count() == 0 and blobs() == []


def test_late_with_penalty_applied_per_started_day(client_for, student, assignment, eager):
    assignment.due_at = timezone.now() - timedelta(days=1, hours=2)  # 2 started days late
    assignment.late_penalty_percent = 15
    assignment.late_cutoff_days = 3
    assignment.save()
    post(client_for(student), assignment, py(text="def double(x): return 2*x\n# SCORE=8\n"))
    sub = Submission.objects.get()
    assert sub.late_days == 2 and sub.penalty_percent == 30
    assert sub.raw_score == 8 and sub.score == pytest.approx(8 * 0.7)
    assert "Late by 2 day(s)" in sub.message


def test_after_hard_cutoff_is_refused(client_for, student, assignment, eager):
    assignment.due_at = timezone.now() - timedelta(days=4)
    assignment.late_cutoff_days = 3
    assignment.save()
    r = post(client_for(student), assignment, py())
    assert any("late cut-off" in m for m in messages_of(r)) and Submission.objects.count() == 0


def test_extension_is_honoured(client_for, student, other_student, instructor, assignment, eager):
    assignment.due_at = timezone.now() - timedelta(hours=1)
    assignment.late_policy = "closed"
    assignment.save()
    Extension.objects.create(assignment=assignment, student=student, due_at=timezone.now() + timedelta(days=1), granted_by=instructor)
    post(client_for(student), assignment, py())
    r = post(client_for(other_student), assignment, py())
    assert Submission.objects.filter(student=student, late_days=0, state="graded").count() == 1
    assert Submission.objects.filter(student=other_student).count() == 0
    assert any("accepts no late work" in m for m in messages_of(r))


def test_attempt_limit(client_for, student, assignment, eager):
    assignment.max_attempts = 2
    assignment.save()
    c = client_for(student)
    post(c, assignment, py())
    post(c, assignment, py())
    r = post(c, assignment, py())
    assert any("used all 2 attempts" in m for m in messages_of(r))
    assert Submission.objects.count() == 2
    assert "0 of 2 left" in c.get(detail_url(assignment)).content.decode()


def test_cooldown(client_for, student, assignment, eager):
    assignment.cooldown_seconds = 600
    assignment.save()
    c = client_for(student)
    post(c, assignment, py())
    r = post(c, assignment, py())
    assert any("before your next attempt" in m for m in messages_of(r))
    assert Submission.objects.count() == 1
    Submission.objects.update(created_at=timezone.now() - timedelta(seconds=601))
    post(c, assignment, py())
    assert Submission.objects.count() == 2


def test_per_student_queue_limit(client_for, student, other_student, assignment, django_capture_on_commit_callbacks, monkeypatch):
    """Nothing is graded here (the task is not run): submissions stay queued."""
    from courseplatform.submissions import tasks

    sent = []
    monkeypatch.setattr(tasks.grade_submission, "apply_async", lambda *a, **k: sent.append(k) or type("R", (), {"id": "t"})())
    c = client_for(student)
    with django_capture_on_commit_callbacks(execute=True):
        post(c, assignment, py(text="a=1"))
        post(c, assignment, py(text="a=2"))
        r = post(c, assignment, py(text="a=3"))
    assert any("waiting to be graded" in m for m in messages_of(r))
    assert Submission.objects.filter(student=student, state="queued").count() == 2
    # Someone else is not held up by it.
    with django_capture_on_commit_callbacks(execute=True):
        post(client_for(other_student), assignment, py())
    assert Submission.objects.filter(student=other_student).count() == 1
    assert len(sent) == 3


def test_unreleased_assignment_is_invisible_to_students(client_for, student, instructor, assignment):
    assignment.released = False
    assignment.save()
    assert client_for(student).get(detail_url(assignment)).status_code == 404
    assert client_for(student).post(submit_url(assignment), {"file": py()}).status_code == 404
    assert client_for(instructor).get(detail_url(assignment)).status_code == 200


def test_staff_submission_is_a_flagged_test_run(client_for, ta, assignment, eager):
    assignment.due_at = timezone.now() - timedelta(days=10)
    assignment.late_policy = "closed"
    assignment.save()
    post(client_for(ta), assignment, py())
    sub = Submission.objects.get()
    assert sub.is_test_run and sub.state == "graded" and sub.late_days == 0
    assert "Test run" in client_for(ta).get(detail_url(assignment)).content.decode()


def test_engine_refuses_a_zip_without_the_packs_module(client_for, student, assignment, eager, blobs):
    """The pack imports `tiny`: a zip holding two other .py files cannot be graded."""
    data = zip_bytes({"a.py": b"x = 1\n", "b.py": b"y = 2\n"})
    r = post(client_for(student), assignment, SimpleUploadedFile("sol.zip", data))
    assert Submission.objects.count() == 0 and blobs() == []
    assert any("tiny" in m for m in messages_of(r)), messages_of(r)
