"""Personal API tokens, the HTTP API, the "check" endpoint, and the terminal client (the
`courseplatform` command of the client package in client/) against a live server."""
from __future__ import annotations

import io
import json
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from django.urls import reverse

from courseplatform.submissions.models import ApiToken, Submission, hash_token

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "client"))
from courseplatform_client import cli  # noqa: E402  the one client: terminal and notebooks

pytestmark = pytest.mark.django_db


@pytest.fixture
def token(student):
    return ApiToken.issue(student)[1]


def api(client, method, path, token, **kw):
    return getattr(client, method)("/api" + path, HTTP_AUTHORIZATION=f"Bearer {token}", **kw)


def test_profile_creates_a_token_shown_once_and_stores_only_its_hash(client_for, student):
    c = client_for(student)
    r = c.post(reverse("api-profile"), {"name": "laptop", "create": "1"}, follow=True)
    assert r.redirect_chain == [(reverse("api-profile"), 302)]  # POST/redirect/GET: a reload sends no form
    key = r.context["new_key"]
    assert key.startswith("cp_") and key in r.content.decode()
    t = ApiToken.objects.get(user=student)
    assert t.key_hash == hash_token(key) and key not in (t.key_hash, t.prefix)
    assert key not in c.get(reverse("api-profile")).content.decode()  # never shown again
    assert ApiToken.authenticate(key) == student
    c.post(reverse("api-profile"), {"revoke": t.pk})
    assert ApiToken.authenticate(key) is None


def test_api_refuses_missing_wrong_and_revoked_tokens(client, token, student):
    assert client.get("/api/me").status_code == 401
    assert api(client, "get", "/me", "cp_deadbeef_nope").status_code == 401
    assert api(client, "get", "/me", token).json()["username"] == "alice"
    ApiToken.objects.update(revoked_at="2026-01-01T00:00Z")
    assert api(client, "get", "/me", token).status_code == 401


def test_api_list_submit_poll_feedback(client, token, student, assignment, eager):
    rows = api(client, "get", "/courses/llms/assignments", token).json()
    assert [r["slug"] for r in rows] == ["tiny"] and rows[0]["can_submit"] is True
    from cp_helpers import py

    r = api(client, "post", "/courses/llms/assignments/tiny/submissions", token, data={"file": py(text="# SCORE=7")})
    assert r.status_code == 201, r.content
    sid = r.json()["id"]
    got = api(client, "get", f"/submissions/{sid}", token).json()
    assert got["state"] == "graded" and got["score"] == 7 and got["final"] is True
    assert got["tests"][1] == {"name": "Hidden test 1", "score": 1.0, "max_score": 4.0, "status": "failed",
                               "message": "", "visible": False, "redacted": True}
    assert Submission.objects.get().via == "api"


def test_api_bad_input_and_policy_refusals(client, token, student, assignment, eager):
    from django.core.files.uploadedfile import SimpleUploadedFile

    r = api(client, "post", "/courses/llms/assignments/tiny/submissions", token, data={"file": SimpleUploadedFile("x.txt", b"1")})
    assert r.status_code == 400 and "accepts" in r.json()["detail"] and r.json()["code"] == "extension"
    assignment.max_attempts = 1
    assignment.save()
    from cp_helpers import py

    assert api(client, "post", "/courses/llms/assignments/tiny/submissions", token, data={"file": py()}).status_code == 201
    r = api(client, "post", "/courses/llms/assignments/tiny/submissions", token, data={"file": py()})
    assert r.status_code == 403 and "used all 1 attempts" in r.json()["detail"]


def test_api_hides_other_students_and_other_courses(client, student, other_student, outsider, assignment, eager):
    from cp_helpers import py

    alice = ApiToken.issue(student)[1]
    bob = ApiToken.issue(other_student)[1]
    eve = ApiToken.issue(outsider)[1]
    sid = api(client, "post", "/courses/llms/assignments/tiny/submissions", alice, data={"file": py()}).json()["id"]
    assert api(client, "get", f"/submissions/{sid}", bob).status_code == 404
    assert api(client, "get", f"/submissions/{sid}", eve).status_code == 404
    assert api(client, "get", "/courses/llms/assignments", eve).status_code == 404
    assert api(client, "post", "/courses/llms/assignments/tiny/submissions", eve, data={"file": py()}).status_code == 404


def test_openapi_schema_and_docs_are_served_without_a_cdn(client):
    schema = client.get("/api/openapi.json").json()
    assert "/api/courses/{course}/assignments/{slug}/submissions" in schema["paths"]
    assert "bearer" in json.dumps(schema["components"]["securitySchemes"]).lower()
    docs = client.get("/api/docs").content.decode()
    assert "cdn" not in docs.lower() and "http://" not in docs and "https://" not in docs  # every asset is ours
    for asset in ("swagger-ui-bundle.js", "swagger-ui-init.js", "swagger-ui.css"):
        assert f"/static/ninja/{asset}" in docs
        assert client.get(f"/static/ninja/{asset}").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_cli_submits_waits_and_prints_feedback_against_a_live_server(live_server, course, student, pack_dir, eager, tmp_path):
    from courseplatform.submissions.sync import sync_pack

    sync_pack(course, pack_dir)
    key = ApiToken.issue(student)[1]
    good = tmp_path / "tiny.py"
    good.write_text("def double(x):\n    return 2 * x\n# SCORE=7\n")
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main(["submit", "llms/tiny", str(good), "--server", live_server.url, "--token", key])
    assert code == 0, err.getvalue()
    text = out.getvalue()
    assert "GRADED  score 7 / 10" in text and "PASS  shapes and values" in text and "Hidden test 1" in text
    # Refusals exit 2 with the server's message.
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    err = io.StringIO()
    with redirect_stdout(io.StringIO()), redirect_stderr(err):
        assert cli.main(["submit", "llms/tiny", str(bad), "--server", live_server.url, "--token", key]) == 2
    assert "is not a file this assignment accepts" in err.getvalue()
    with redirect_stdout(io.StringIO()), redirect_stderr(err := io.StringIO()):
        assert cli.main(["submit", "llms/tiny", str(good), "--server", live_server.url, "--token", "cp_x_y"]) == 2
    assert "did not accept your token" in err.getvalue() and "Traceback" not in err.getvalue()
    # An engine error exits 1.
    broken = tmp_path / "tiny2.py"
    broken.write_text("STATUS=error\n")
    with redirect_stdout(out := io.StringIO()), redirect_stderr(io.StringIO()):
        assert cli.main(["submit", "llms/tiny", str(broken), "--server", live_server.url, "--token", key]) == 1
    assert "SyntaxError" in out.getvalue()


# --- checks: visible tests only, not an attempt, rate-limited -----------------------------------


@pytest.fixture
def visible_aware(monkeypatch):
    """The fake engine, taught the engine's only_visible contract (drop the hidden cases); records calls."""
    import cp_fake_grader

    from courseplatform.grading import engine

    calls = []

    def grade(pack_dir, filename, data, only_visible=False):
        calls.append(only_visible)
        res = cp_fake_grader.grade(pack_dir, filename, data)
        if only_visible:
            res["tests"] = [t for t in res["tests"] if t["visible"]]
            res["score"] = sum(t["score"] for t in res["tests"])
            res["max_score"] = sum(t["max_score"] for t in res["tests"])
        return res

    monkeypatch.setattr(engine, "grade_function", lambda: grade)
    return calls


CHECKS = "/courses/llms/assignments/tiny/checks"


def test_check_runs_visible_tests_only_and_is_not_an_attempt(client, token, student, assignment, eager, visible_aware):
    from cp_helpers import py

    assignment.max_attempts = 1
    assignment.save()
    r = api(client, "post", CHECKS, token, data={"file": py(text="# SCORE=10")})
    assert r.status_code == 201, r.content
    got = api(client, "get", f"/submissions/{r.json()['id']}", token).json()
    assert visible_aware == [True]
    assert got["state"] == "graded" and got["test_run"] is True
    assert [t["name"] for t in got["tests"]] == ["shapes and values on 2-D input"]
    assert got["score"] == 6 and got["max_score"] == 6
    assert "SECRET" not in json.dumps(got)
    # Not an attempt: the one allowed attempt is still there, and a real submission runs everything.
    row = api(client, "get", "/courses/llms/assignments/tiny", token).json()
    assert row["attempts_used"] == 0 and row["attempts_left"] == 1 and row["can_submit"] is True
    r = api(client, "post", "/courses/llms/assignments/tiny/submissions", token, data={"file": py()})
    assert r.status_code == 201 and r.json()["attempt"] == 1
    assert visible_aware == [True, False]
    assert Submission.objects.get(via="check").is_test_run is True


def test_checks_are_rate_limited_per_student_with_a_clear_message(client, token, other_student, student, assignment,
                                                                  eager, visible_aware, settings):
    from cp_helpers import py

    settings.CHECKS_PER_WINDOW = 2
    for _ in range(2):
        assert api(client, "post", CHECKS, token, data={"file": py()}).status_code == 201
    r = api(client, "post", CHECKS, token, data={"file": py()})
    assert r.status_code == 429 and r.json()["code"] == "rate_limited"
    assert "all 2 checks allowed in 10 minutes" in r.json()["detail"] and "next check is possible in" in r.json()["detail"]
    assert Submission.objects.filter(via="check").count() == 2
    # Another student has their own allowance.
    bob = ApiToken.issue(other_student)[1]
    assert api(client, "post", CHECKS, bob, data={"file": py()}).status_code == 201
    # Checks older than the window do not count.
    from datetime import timedelta

    from django.utils import timezone

    Submission.objects.filter(student=student).update(created_at=timezone.now() - timedelta(minutes=11))
    assert api(client, "post", CHECKS, token, data={"file": py()}).status_code == 201


def test_check_refusals_closed_running_and_bad_file(client, token, student, assignment, eager, visible_aware):
    from datetime import timedelta

    from cp_helpers import py
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.utils import timezone

    r = api(client, "post", CHECKS, token, data={"file": SimpleUploadedFile("x.txt", b"1")})
    assert r.status_code == 400 and r.json()["code"] == "extension"
    Submission.objects.create(assignment=assignment, student=student, is_test_run=True, attempt=0, via="check",
                              sha256="0" * 64, blob="x", original_name="x.py", kind="py", size=1, state="running")
    r = api(client, "post", CHECKS, token, data={"file": py()})
    assert r.status_code == 403 and r.json()["code"] == "queue" and "still being graded" in r.json()["detail"]
    Submission.objects.all().delete()
    assignment.due_at = timezone.now() - timedelta(days=30)
    assignment.late_policy = "closed"
    assignment.save()
    r = api(client, "post", CHECKS, token, data={"file": py()})
    assert r.status_code == 403 and r.json()["code"] == "policy"
    assert not Submission.objects.exists()


def test_web_check_button_shows_the_live_card(client_for, student, assignment, eager, visible_aware):
    from cp_helpers import py

    c = client_for(student)
    page = c.get(reverse("submissions:detail", args=["llms", "tiny"])).content.decode()
    assert 'id="check-btn"' in page and "/client/courseplatform_client-" in page and "-py3-none-any.whl" in page
    assert 'cp.check(&quot;llms/tiny&quot;)' in page or 'cp.check("llms/tiny")' in page
    r = c.post(reverse("submissions:check", args=["llms", "tiny"]), {"file": py(text="# SCORE=3")}, HTTP_HX_REQUEST="true")
    body = r.content.decode()
    assert r.status_code == 200 and "Check" in body and "visible tests only" in body
    assert "Hidden test" not in body and "SECRET" not in body and "3 / 6" in body.replace("3.0", "3")
    sub = Submission.objects.get()
    assert sub.via == "check" and sub.is_test_run
    # The page's attempts panel still says nothing was submitted for credit.
    row = c.get(reverse("submissions:detail", args=["llms", "tiny"])).context["standing"]
    assert row.attempts_used == 0
