"""Shared fixtures: a course with an instructor, a TA and students, and logged-in clients.

Apps add their own fixtures in conftest.py files of their test folders.
"""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

# One run of the suite must not meet another on this machine (two checkouts, or two runs of one):
# the test database and the broker's keys carry a suffix made of the checkout and this process.
CHECKOUT = Path(__file__).resolve().parent.parent
RUN_ID = f"{hashlib.sha256(str(CHECKOUT).encode()).hexdigest()[:8]}_{os.getpid()}"


def pytest_configure(config):
    from django.conf import settings

    settings.HOOKS_FAIL_LOUDLY = True  # a broken dashboard panel or gradebook provider fails its test
    if getattr(config, "workerinput", None) is None:  # the controller (or a plain run) names the run
        os.environ.setdefault("COURSEPLATFORM_TEST_RUN", RUN_ID)
    run = os.environ.get("COURSEPLATFORM_TEST_RUN", RUN_ID)
    if settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
        prefix = f"cp-test-{run}:"
        os.environ["CELERY_BROKER_KEYPREFIX"] = prefix  # worker processes started by tests inherit it
        settings.CELERY_BROKER_TRANSPORT_OPTIONS = {**settings.CELERY_BROKER_TRANSPORT_OPTIONS,
                                                    "global_keyprefix": prefix}
        from courseplatform.celery import app

        app.conf.broker_transport_options = settings.CELERY_BROKER_TRANSPORT_OPTIONS


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """test_<name>_<checkout>_<pid>: two runs on one machine never share (or drop) a test database.
    Databases left by runs that were killed are dropped here when their process is gone."""
    from django.conf import settings

    run = os.environ.get("COURSEPLATFORM_TEST_RUN", RUN_ID)
    for alias, db in settings.DATABASES.items():
        test = db.setdefault("TEST", {})
        base = test.get("NAME") or "test_" + db["NAME"]
        if db["ENGINE"].endswith("sqlite3"):
            continue  # in-memory
        test["NAME"] = f"{base}_{run}"
        _drop_stale_test_databases(db, base)


def _drop_stale_test_databases(db: dict, base: str) -> None:
    if "postgresql" not in db["ENGINE"]:
        return
    import psycopg

    prefix = f"{base}_{RUN_ID.split('_')[0]}_"
    try:
        with psycopg.connect(host=db.get("HOST") or None, port=db.get("PORT") or None, user=db.get("USER") or None,
                             password=db.get("PASSWORD") or None, dbname="postgres", autocommit=True,
                             connect_timeout=5) as conn:
            names = [r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                                                 (prefix.replace("_", r"\_") + "%",))]
            for name in names:
                pid = name[len(prefix):].split("_")[0]
                if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except psycopg.Error:
        pass  # only housekeeping: the run itself reports a database that cannot be reached


@pytest.fixture(autouse=True)
def _own_media_and_pack_store(settings, tmp_path_factory):
    """Every test stores uploads and trusted pack copies in folders of its own, never in the
    checkout's var/ (shared by every run and by `make run`): no test sees another's files."""
    root = tmp_path_factory.mktemp("store")
    settings.MEDIA_ROOT = root / "media"
    settings.PACK_STORE = root / "packs"


@pytest.fixture(autouse=True)
def fast_password_hasher(settings):
    """PBKDF2 costs ~0.3 s a user on this machine; the tests only need hashing to work."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def make_user(django_user_model):
    def make(username: str, **extra):
        extra.setdefault("email", f"{username}@example.edu")
        return django_user_model.objects.create_user(username=username, password="pw-" + username, **extra)

    return make


@pytest.fixture
def course(db):
    from courseplatform.courses.models import Course

    return Course.objects.create(slug="llms", title="Deep Dive into LLMs", term="WS 2026/27")


@pytest.fixture
def other_course(db):
    from courseplatform.courses.models import Course

    return Course.objects.create(slug="other", title="Another Course")


def _member(course, user, role):
    from courseplatform.courses.models import Membership

    Membership.objects.create(course=course, user=user, role=role)
    return user


@pytest.fixture
def instructor(course, make_user):
    return _member(course, make_user("prof"), "instructor")


@pytest.fixture
def ta(course, make_user):
    return _member(course, make_user("tara"), "ta")


@pytest.fixture
def student(course, make_user):
    return _member(course, make_user("alice", first_name="Alice", last_name="Adams"), "student")


@pytest.fixture
def other_student(course, make_user):
    return _member(course, make_user("bob", first_name="Bob", last_name="Brown"), "student")


@pytest.fixture
def outsider(other_course, make_user):
    """A student of another course only."""
    return _member(other_course, make_user("eve"), "student")


@pytest.fixture
def client_for(client):
    """client_for(user) -> a test client logged in as that user (a fresh client each call)."""
    from django.test import Client

    def make(user):
        c = Client()
        c.force_login(user)
        return c

    return make


# --------------------------------------------------------------------------- browser tests
# One Playwright (and one chromium) for the whole session, shared by every folder's browser tests:
# a second sync_playwright() in the same thread fails ("Sync API inside the asyncio loop").
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
# around it are ordinary synchronous calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def _no_polling_by_eval(*args, **kwargs):
    raise AssertionError(
        "page.wait_for_function() is refused in this suite: Playwright polls it by compiling the predicate "
        "with new Function() inside the page, which the site's CSP forbids (no 'unsafe-eval'), so it passes "
        "on a warm server and fails on a cold one. Wait with expect(locator).to_have_js_property / "
        "to_have_attribute / to_be_visible, page.expect_response or wait_for_selector instead.")


def _guard_page(page) -> None:
    """Every page of every context: waiting may not depend on evaluating strings under the CSP."""
    page.wait_for_function = _no_polling_by_eval


def _guard_context(context) -> None:
    context.on("page", _guard_page)  # pages the site opens (popups, new windows)
    new_page = context.new_page

    def guarded_new_page(*args, **kwargs):
        p = new_page(*args, **kwargs)
        _guard_page(p)
        return p

    context.new_page = guarded_new_page


@pytest.fixture(scope="session")
def browser():
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (scripts/system_deps.sh)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        new_context = b.new_context

        def guarded_new_context(*args, **kwargs):
            context = new_context(*args, **kwargs)
            _guard_context(context)
            return context

        b.new_context = guarded_new_context  # every test's contexts, the fixture's and its own
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    p = context.new_page()
    yield p
    context.close()


@pytest.fixture
def login(live_server):
    """login(page, username, password) through the real login form."""

    def do(page, username, password):
        page.goto(live_server.url + "/accounts/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password)
        page.click("button[type=submit], input[type=submit]")
        page.wait_for_load_state()

    return do
