"""Fixtures for the LTI tests: the loopback LTI platform, registered here, and a driver for the whole
OIDC login -> auth -> id_token launch at the HTTP level (Django's test client for the tool, real
HTTP for the platform)."""
from __future__ import annotations

import re
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from django.utils import timezone

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "submissions"))

import cp_fake_grader  # noqa: E402
from cp_helpers import write_pack  # noqa: E402
from lti_platform import Platform, form_fields  # noqa: E402


@pytest.fixture
def platform(db, settings, tmp_path):
    from lti_tool.models import Key

    from courseplatform.lti.tool import ensure_key

    settings.CACHES = {**settings.CACHES, "lti": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                                  "LOCATION": f"lti-{tmp_path.name}"}}
    ensure_key()
    holder = {"jwks": Key.objects.as_jwks()}
    p = Platform(tool_jwks=lambda: holder["jwks"])
    p.holder = holder
    p.registration = p.register()
    yield p
    p.close()


@pytest.fixture
def eager(monkeypatch, settings, tmp_path):
    """Celery runs tasks inline; the engine is the submission tests' fake one."""
    from courseplatform.celery import app
    from courseplatform.grading import engine, jobs

    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PACK_STORE = tmp_path / "packs"
    monkeypatch.setattr(engine, "grade_function", lambda: cp_fake_grader.grade)  # the one grading path's engine
    monkeypatch.setattr(jobs, "on_commit", lambda fn: fn())
    old = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield app
    app.conf.task_always_eager, app.conf.task_eager_propagates = old


@pytest.fixture
def on_commit_now(monkeypatch):
    """The test's transaction never commits: on_commit callbacks run at once."""
    from django.db import transaction

    monkeypatch.setattr(transaction, "on_commit", lambda fn, using=None, robust=False: fn())


@pytest.fixture
def assignment(course, tmp_path):
    from courseplatform.submissions.sync import sync_pack

    a, _ = sync_pack(course, write_pack(tmp_path / "assignments"))
    a.due_at = timezone.now() + timedelta(days=3)
    a.save()
    return a


def oidc(client, platform, params):
    """The LMS's login initiation, the tool's redirect to the auth endpoint, the platform's id_token
    form: returns the form's fields (id_token, state) as the browser would post them."""
    r = client.post("/lti/login/", params)
    assert r.status_code == 302, (r.status_code, r.content[:500])
    auth = r["Location"]
    assert auth.startswith(platform.url + "/auth?"), auth
    page = requests.get(auth, timeout=10)
    assert page.status_code == 200
    action = re.search(r'action="([^"]+)"', page.text).group(1)
    assert action == "http://testserver/lti/launch/"
    return form_fields(page.text)


def launch(client, platform, params):
    return client.post("/lti/launch/", oidc(client, platform, params))


@pytest.fixture
def do_launch():
    return launch


@pytest.fixture
def do_oidc():
    return oidc
