"""Every route of the site, refused systematically: anonymous, another course, wrong role, IDOR.

The routes come from the resolver and each view's allowed roles from its own
`course_role_required` wrapper, so a view added tomorrow is tested without editing this file,
and a course view added without the wrapper fails `test_every_course_view_checks_the_role`.
"""
from __future__ import annotations

import re

import pytest
from django.apps import apps
from django.conf import settings
from django.test import Client
from django.urls import reverse

from .routes import (
    all_routes,
    allowed_roles,
    course_routes,
    get_only,
    post_only,
    staff_only,
    student_only,
    touches_owned_object,
    url_for,
)

pytestmark = pytest.mark.django_db

COURSE_ROUTES = course_routes()
IDS = [str(r) for r in COURSE_ROUTES]
# Routes outside courses/<slug>/: each with the guard that protects it (reviewed by hand).
PUBLIC_OR_SELF = {
    "login", "logout", "password_change", "password_change_done", "password_reset", "password_reset_done",
    "password_reset_confirm", "password_reset_complete",  # django.contrib.auth's own views
    "courses:home",  # login_required; lists the user's own memberships
    "api-profile",  # login_required; the user's own tokens
    "favicon",  # a redirect to the static icon; public, reads nothing
    "client-wheel",  # public by design: the student client's wheel, exact name only (tests/client/test_wheel.py)
    "metrics",  # the scraper's bearer token or a superuser; refusals in tests/ops/test_metrics.py
    # LTI 1.3 (courseplatform/lti): protocol endpoints, each refusal tested in tests/lti/test_refusals.py
    "lti:jwks",  # public by design: the tool's public keys
    "lti:login", "lti:launch",  # OIDC login / id_token launch: the signed launch is the credential
    "lti:link_course", "lti:deep_link",  # the session's validated LTI launch and its instructor role (tests/lti)
    "lti:registrations", "lti:rotate_key",  # superusers only (tests/lti/test_flow.py, test_lti_admin_pages_refuse_others)
    "live-join",  # login_required; a code is looked up only in the user's own student memberships, rate limited
}
API_PREFIX = "api:"  # django-ninja, token auth: tested in test_api.py


# Bob's data, spelled so that nothing random can contain it: his username as a whole word of the
# page's visible text (attributes, scripts and form values, where the masked CSRF token lives, are
# not text), and markers that only his objects carry.
BOB_MARKERS = (b"bob_solution", b"bob's secret", b"bob-plot", b"bob-executed", b"bob-review",
               b"example.org/bob", b"bob@example.edu", b"Brown")


def assert_no_bob_data(response) -> None:
    from bs4 import BeautifulSoup

    found = [m for m in BOB_MARKERS if m in response.content]
    assert not found, f"a refused page shows Bob's data: {found}"
    soup = BeautifulSoup(response.content, "html.parser")
    for tag in soup(["script", "style", "template"]):
        tag.decompose()
    text = soup.get_text(" ")
    assert not re.search(r"\bbob\b", text, re.IGNORECASE), f"a refused page names Bob: {text[:300]!r}"


def _login_redirect(response) -> bool:
    return response.status_code == 302 and response["Location"].startswith(reverse("login") + "?next=")


def test_the_walk_finds_every_app():
    """The walk is not vacuous: each app's routes are there and classified."""
    names = {str(r) for r in COURSE_ROUTES}
    for expected in ["courses:roster", "submissions:file", "quizzes:answer", "projects:download",
                     "gradebook:export", "gradebook:index", "projects:grade"]:
        assert expected in names
    by_name = {str(r): r for r in COURSE_ROUTES}
    assert staff_only(by_name["gradebook:export"]) and staff_only(by_name["projects:grade"])
    assert not staff_only(by_name["gradebook:index"]) and student_only(by_name["quizzes:start"])
    assert post_only(by_name["projects:grade"].callback) and not post_only(by_name["projects:delivery"].callback)
    assert len(COURSE_ROUTES) >= 60


@pytest.mark.parametrize("route", COURSE_ROUTES, ids=IDS)
def test_every_course_view_checks_the_role(route):
    assert allowed_roles(route.callback) is not None, (
        f"{route} ({route.pattern}) is not wrapped by course_role_required: any logged-in user could open it")


def test_every_other_route_is_reviewed():
    unknown = []
    for r in all_routes():
        name = str(r)
        if r.is_course_route or name in PUBLIC_OR_SELF or name.startswith(API_PREFIX):
            continue
        if name.startswith("admin:") or r.pattern.startswith("admin/"):
            continue
        unknown.append(f"{name} ({r.pattern})")
    assert not unknown, f"routes outside courses/<slug>/ that no test covers: {unknown}"


def test_admin_refuses_course_staff(client_for, instructor):
    """Course instructors are not Django staff: the admin is for superusers only."""
    r = client_for(instructor).get("/admin/")
    assert r.status_code == 302 and "/admin/login/" in r["Location"]
    r = client_for(instructor).get("/admin/submissions/submission/")
    assert r.status_code == 302 and "/admin/login/" in r["Location"]


def _get_or_post(c, route, url, data=None):
    return c.post(url, data or {}) if post_only(route.callback) else c.get(url)


@pytest.mark.parametrize("route", COURSE_ROUTES, ids=IDS)
def test_refusals(client_for, world, route):
    """For one route: anonymous -> login; another course's member -> 404; this course's instructor
    on another course's URL -> 404; a student on a staff route -> 403; a TA on an instructor route
    -> 403; staff on a student-only route -> 403. GET and POST both, where the view takes them."""
    from django.test import Client as _Client

    url = url_for(route, world)
    roles = allowed_roles(route.callback)
    # anonymous
    anon = _Client()
    r = anon.get(url)
    if post_only(route.callback):
        assert r.status_code == 405, (route, r.status_code)
    else:
        assert _login_redirect(r), (route, r.status_code)
    if not get_only(route.callback):
        r = anon.post(url, {"name": "x", "score": "10"})
        assert _login_redirect(r), (route, r.status_code)
    # a member of another course only
    eve = client_for(world.eve)
    for method in ("get", "post"):
        if method == "get" and post_only(route.callback) or method == "post" and get_only(route.callback):
            continue
        r = getattr(eve, method)(url)
        assert r.status_code == 404, ("eve", route, method, r.status_code)
    # an instructor of course A is nobody in course B, even with the right ids
    r = _get_or_post(client_for(world.instructor), route, url_for(route, world, course_slug=world.other_course.slug))
    assert r.status_code == 404, ("prof elsewhere", route, r.status_code)
    # a student on staff routes, with Bob's ids and with her own
    if staff_only(route):
        alice = client_for(world.alice)
        for owner in ("bob", "alice"):
            u = url_for(route, world, owner)
            if not post_only(route.callback):
                r = alice.get(u)
                assert r.status_code == 403, ("alice", route, r.status_code)
                assert_no_bob_data(r)
            if not get_only(route.callback):
                r = alice.post(u, {"score": "10", "criterion_1": "10", "role": "instructor", "action": "lock"})
                assert r.status_code == 403, ("alice", route, r.status_code)
    if roles == ("instructor",):
        r = _get_or_post(client_for(world.ta), route, url)
        assert r.status_code == 403, ("ta", route, r.status_code)
    if student_only(route):
        for user in (world.ta, world.instructor):
            r = client_for(user).post(url, {"name": "Staff group", "code": "X"})
            assert r.status_code == 403, ("staff", route, r.status_code)


IDOR_ROUTES = [r for r in COURSE_ROUTES if touches_owned_object(r) and not staff_only(r)]


@pytest.mark.parametrize("route", IDOR_ROUTES, ids=[str(r) for r in IDOR_ROUTES])
def test_classmate_cannot_reach_another_students_objects(client_for, world, route):
    """Alice on Bob's submission, file, artifact, attempt, answer, group delivery, file version,
    attendance: refused (404, never a page with Bob's data), and nothing of Bob's changes."""
    from courseplatform.projects.models import DeliveryVersion
    from courseplatform.quizzes.models import AttemptQuestion

    alice = client_for(world.alice)
    url = url_for(route, world, "bob")
    before = (world.bob_attempt.__class__.objects.get(pk=world.bob_attempt.pk).state,
              list(AttemptQuestion.objects.filter(attempt=world.bob_attempt).values_list("response", flat=True)),
              DeliveryVersion.objects.filter(delivery__group=world.group_b).count())
    if not post_only(route.callback):
        r = alice.get(url)
        assert r.status_code in (403, 404), (route, r.status_code)
        assert b"bob_solution" not in r.content and b"Bob's private feedback" not in r.content
    if not get_only(route.callback):
        r = alice.post(url, {f"q{world.bob_item.pk}": "64", "repo_url": "https://evil.example/", "text": "x"})
        assert r.status_code in (403, 404), (route, r.status_code)
    after = (world.bob_attempt.__class__.objects.get(pk=world.bob_attempt.pk).state,
             list(AttemptQuestion.objects.filter(attempt=world.bob_attempt).values_list("response", flat=True)),
             DeliveryVersion.objects.filter(delivery__group=world.group_b).count())
    assert before == after
    # The other side: the same URL with Alice's own ids works for Alice.
    if not post_only(route.callback):
        r = alice.get(url_for(route, world, "alice"))
        assert r.status_code in (200, 302), (route, r.status_code)


# Per-course settings rows created with their defaults the first time a page reads them
# (get_or_create): materialising a default is not a change anyone can observe.
LAZY_DEFAULTS = {"projects.ProjectSettings", "gradebook.CategoryWeights"}


def _snapshot():
    """Every row of the project's own models (not sessions/auth bookkeeping)."""
    rows = {}
    for model in apps.get_models():
        if not model.__module__.startswith("courseplatform.") or model._meta.label in LAZY_DEFAULTS:
            continue
        rows[model._meta.label] = sorted(map(repr, model.objects.order_by("pk").values()))
    return rows


def test_get_never_changes_state(client_for, world):
    """Every GET route, opened by every role, leaves the database as it was (and never 500s)."""
    before = _snapshot()
    clients = {who: client_for(getattr(world, who)) for who in ("instructor", "ta", "alice")}
    failures = []
    for route in COURSE_ROUTES:
        if post_only(route.callback):
            continue
        for who, c in clients.items():
            r = c.get(url_for(route, world, "alice" if who == "alice" else "bob"))
            if r.status_code >= 500:
                failures.append(f"{route} as {who}: {r.status_code}")
    assert not failures
    after = _snapshot()
    changed = [label for label in before if before[label] != after[label]]
    assert not changed, f"GET requests changed {changed}"


def test_post_without_csrf_token_is_refused_everywhere(world):
    """A real browser client (CSRF enforced): every state-changing route refuses a forged POST."""
    failures = []
    for who in ("instructor", "alice"):
        c = Client(enforce_csrf_checks=True)
        c.force_login(getattr(world, who))
        for route in COURSE_ROUTES:
            if get_only(route.callback):
                continue
            r = c.post(url_for(route, world, "alice" if who == "alice" else "bob"), {"name": "x"})
            # 403 from CSRF, or the role check (403), or 404 for objects not theirs: never a success.
            if r.status_code not in (403, 404):
                failures.append(f"{route} as {who}: {r.status_code}")
            elif r.status_code == 403 and allowed_roles(route.callback) and (
                    "student" in allowed_roles(route.callback) if who == "alice" else True):
                if b"CSRF" not in r.content and b"csrf" not in r.content.lower():
                    failures.append(f"{route} as {who}: 403 but not from the CSRF check")
    assert not failures, failures


def test_settings_are_hardened_for_production():
    assert settings.SESSION_COOKIE_HTTPONLY
    assert settings.SECURE_CONTENT_TYPE_NOSNIFF
    assert settings.X_FRAME_OPTIONS == "DENY"
    assert "django.middleware.csrf.CsrfViewMiddleware" in settings.MIDDLEWARE
    assert "django.middleware.clickjacking.XFrameOptionsMiddleware" in settings.MIDDLEWARE


GARBAGE = {
    "ids": {k: "abc" for k in ("submission", "student", "group", "user", "pk", "delete", "revoke", "member", "quiz",
                               "question", "session", "milestone", "version")},
    "nul": {k: "x\x00y" for k in ("name", "code", "text", "feedback", "repo_url", "score", "reason", "comment",
                                  "title", "role", "action", "scope", "notes", "description", "due", "date")},
    "huge_number": {k: "9" * 400 for k in ("submission", "student", "group", "score", "points", "weight",
                                          "assignments", "max_group_size")},
}
WRITE_ROUTES = [r for r in COURSE_ROUTES if not get_only(r.callback)]
# Routes known to crash on garbage input (none now): an entry here documents a bug until it is fixed.
KNOWN_500: dict[str, str] = {}


def test_garbage_posts_get_an_answer_not_a_500(world):
    """Non-numeric ids, NUL bytes (PostgreSQL refuses them in text) and absurd numbers in every
    usual field name, with every action/scope a view understands: a message, never a crash."""
    from courseplatform.projects.models import RubricCriterion

    crit = RubricCriterion.objects.filter(milestone=world.milestone).first()
    variants = []
    for name, data in GARBAGE.items():
        variants.append((name, data))
    for scope in ("submission", "student", "all"):
        variants.append((f"scope={scope}", {**GARBAGE["ids"], "scope": scope}))
    for action in ("create", "move", "rename", "delete", "new_code", "lock"):
        variants.append((f"action={action}", {**GARBAGE["ids"], **GARBAGE["nul"], "action": action}))
    variants.append(("grade", {f"criterion_{crit.pk}": "5", f"comment_{crit.pk}": "a\x00b", "feedback": "f\x00",
                               f"override_{world.bob.pk}": "3", f"reason_{world.bob.pk}": "r\x00"}))
    clients = {}
    for who in ("alice", "instructor"):
        clients[who] = Client(raise_request_exception=False)
        clients[who].force_login(getattr(world, who))
    crashed = {}
    for route in WRITE_ROUTES:
        who = "instructor" if staff_only(route) else "alice"
        url = url_for(route, world, "bob" if who == "instructor" else "alice")
        for name, data in variants:
            r = clients[who].post(url, data)
            if r.status_code >= 500:
                crashed.setdefault(str(route), []).append(name)
    unexpected = {k: v for k, v in crashed.items() if k not in KNOWN_500}
    assert not unexpected, f"POSTs that crash: {unexpected}"
    fixed = set(KNOWN_500) - set(crashed)
    assert not fixed, f"fixed now: remove {fixed} from KNOWN_500"


SIMILARITY_ROUTES = {"similarity:report", "similarity:status", "similarity:start", "similarity:settings",
                     "similarity:export", "similarity:sources", "similarity:pair", "similarity:review"}


def test_similarity_routes_are_staff_only():
    """Copy detection (issue 26) is for staff: every route of the app is registered here, and each
    refuses students (test_refusals checks the 403s; settings are the instructor's alone)."""
    found = {str(r): r for r in COURSE_ROUTES if r.namespace == "similarity"}
    assert set(found) == SIMILARITY_ROUTES, f"similarity routes changed: {set(found) ^ SIMILARITY_ROUTES}"
    for name, route in found.items():
        assert staff_only(route), f"{name} is not staff-only"
    assert allowed_roles(found["similarity:settings"].callback) == ("instructor",)
    for name in ("similarity:start", "similarity:settings", "similarity:review"):
        assert post_only(found[name].callback), f"{name} must be POST-only"
