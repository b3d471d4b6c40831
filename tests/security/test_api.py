"""The token API under /api/: the same refusals as the web pages."""
from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

pytestmark = pytest.mark.django_db


def _token(user, name="cli"):
    from courseplatform.submissions.models import ApiToken

    token, key = ApiToken.issue(user, name)
    return token, key


def _api(key=None) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {key}") if key else Client()


def test_without_a_valid_token_everything_is_401(world):
    urls = ["/api/me", "/api/courses/llms/assignments", "/api/courses/llms/assignments/attention",
            "/api/courses/llms/assignments/attention/submissions", f"/api/submissions/{world.bob_sub.pk}"]
    for client in (_api(), _api("cp_nonsense"), Client(HTTP_AUTHORIZATION="Basic YWxpY2U6cHctYWxpY2U=")):
        for url in urls:
            assert client.get(url).status_code == 401, url
        r = client.post("/api/courses/llms/assignments/attention/submissions",
                        {"file": SimpleUploadedFile("a.py", b"x = 1\n")})
        assert r.status_code == 401


def test_a_logged_in_session_is_not_an_api_credential(client_for, world):
    """Session cookies do not authenticate the API (so no CSRF hole through it)."""
    c = client_for(world.alice)
    assert c.get("/api/me").status_code == 401
    r = c.post("/api/courses/llms/assignments/attention/submissions", {"file": SimpleUploadedFile("a.py", b"x=1\n")})
    assert r.status_code == 401


def test_revoked_token_stops_working(world):
    from courseplatform.submissions.models import ApiToken

    token, key = _token(world.alice)
    assert _api(key).get("/api/me").status_code == 200
    ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())
    assert _api(key).get("/api/me").status_code == 401


def test_student_token_cannot_reach_other_students_or_courses(world, no_tasks):
    from courseplatform.submissions.models import Submission

    _, key = _token(world.alice)
    api = _api(key)
    r = api.get(f"/api/submissions/{world.bob_sub.pk}")
    assert r.status_code == 404 and b"bob" not in r.content
    assert api.get(f"/api/submissions/{world.alice_sub.pk}").status_code == 200
    assert api.get("/api/courses/other/assignments").status_code == 404
    assert api.get("/api/courses/other/assignments/other-a").status_code == 404
    r = api.get("/api/courses/llms/assignments/attention/submissions")
    assert r.status_code == 200 and [s["id"] for s in r.json()] == [world.alice_sub.pk]
    before = Submission.objects.count()
    r = api.post("/api/courses/other/assignments/other-a/submissions",
                 {"file": SimpleUploadedFile("a.py", b"def f():\n    return 1\n")})
    assert r.status_code == 404 and Submission.objects.count() == before
    me = api.get("/api/me").json()
    assert [c["slug"] for c in me["courses"]] == ["llms"]


def test_unreleased_assignment_is_invisible_to_students(world):
    world.assignment.released = False
    world.assignment.save()
    _, key = _token(world.alice)
    assert _api(key).get("/api/courses/llms/assignments/attention").status_code == 404
    assert _api(key).get(f"/api/submissions/{world.alice_sub.pk}").status_code == 404
    _, staff_key = _token(world.ta)
    assert _api(staff_key).get("/api/courses/llms/assignments/attention").status_code == 200


def test_api_upload_name_cannot_traverse(world, no_tasks):
    _, key = _token(world.carol)
    r = _api(key).post("/api/courses/llms/assignments/attention/submissions",
                       {"file": SimpleUploadedFile("../../../../tmp/x.py", b"def f():\n    return 1\n")})
    assert r.status_code == 201, r.content
    assert r.json()["filename"] == "x.py"
