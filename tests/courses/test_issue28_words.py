"""Words a class meets (issue 28, items 5 and 6): what the site says must be true and not alarming,
and every time it shows names its zone."""
from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

pytestmark = pytest.mark.django_db
BERLIN = ZoneInfo("Europe/Berlin")


def test_the_lockout_page_says_minutes_not_an_iso_duration(client, django_user_model, settings):
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)
    django_user_model.objects.create_user("victim", password="pw-victim-123")
    r = None
    for i in range(settings.AXES_USERNAME_FAILURE_LIMIT):
        r = client.post(reverse("login"), {"username": "victim", "password": "nope"}, REMOTE_ADDR=f"10.9.0.{i + 1}")
    assert r.status_code == 429
    text = r.content.decode()
    assert "Wait 15 minutes and try again" in text
    assert "PT15M" not in text


def test_duration_words():
    from courseplatform.core.templatetags.cp_time import duration_words

    assert duration_words("PT15M") == "15 minutes"
    assert duration_words("PT1H30M") == "1 hour 30 minutes"
    assert duration_words("P1DT2H") == "1 day 2 hours"
    assert duration_words(timedelta(minutes=1)) == "1 minute"
    assert duration_words("PT45S") == "45 seconds"


def test_the_token_page_names_the_clients_real_module(client_for, student):
    text = client_for(student).get(reverse("api-profile")).content.decode()
    assert "courseplatform.cli" not in text
    assert "python -m courseplatform_client submit" in text
    import importlib.util
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "client"))
    assert importlib.util.find_spec("courseplatform_client.__main__") is not None


def test_absences_read_as_an_allowance_not_a_ban(client_for, student, course):
    text = client_for(student).get(reverse("courses:dashboard", args=[course.slug])).content.decode()
    assert "of 2 absences allowed" not in text
    assert re.search(r'data-testid="my-absences">0 <span>absences so far · you may miss up to 2 sessions', text), text


def _assignment(course, due):
    from courseplatform.submissions.models import Assignment

    return Assignment.objects.create(course=course, slug="attention", title="Attention", points=10,
                                     accepted_kinds=["py"], due_at=due, handout_html="<p>Do it.</p>")


def _run(assignment, user, settings, when):
    from pathlib import Path

    from courseplatform.submissions.models import Submission

    data = f"x = {user.pk}\n".encode()
    sha = hashlib.sha256(data).hexdigest()
    rel = f"submissions/{sha[:2]}/{sha}.py"
    (Path(settings.MEDIA_ROOT) / rel).parent.mkdir(parents=True, exist_ok=True)
    (Path(settings.MEDIA_ROOT) / rel).write_bytes(data)
    return Submission.objects.create(assignment=assignment, student=user, sha256=sha, blob=rel, original_name="a.py",
                                     kind="py", size=len(data), is_test_run=True, state="graded", score=6,
                                     max_score=10, created_at=when)


def test_students_checks_are_not_listed_as_staff_test_runs(client_for, course, student, instructor, settings):
    a = _assignment(course, timezone.now() + timedelta(days=3))
    _run(a, student, settings, timezone.now())
    html = client_for(instructor).get(reverse("submissions:staff", args=[course.slug, a.slug])).content.decode()
    staff_runs = re.search(r'id="staff-test-runs".*?</section>', html, re.S)
    checks = re.search(r'id="student-checks".*?</section>', html, re.S)
    assert checks and "alice" in checks.group(0) and "Students' recent checks" in checks.group(0)
    assert staff_runs is None  # no staff run yet: no such list, and Alice is not in one
    _run(a, instructor, settings, timezone.now())
    html = client_for(instructor).get(reverse("submissions:staff", args=[course.slug, a.slug])).content.decode()
    staff_runs = re.search(r'id="staff-test-runs".*?</section>', html, re.S).group(0)
    assert "prof" in staff_runs and "alice" not in staff_runs


@pytest.mark.parametrize("due, zone_name", [(datetime(2026, 12, 18, 23, 59, tzinfo=BERLIN), "CET"),
                                            (datetime(2026, 10, 20, 23, 59, tzinfo=BERLIN), "CEST")])
def test_deadlines_and_submission_times_name_the_zone(client_for, course, student, settings, due, zone_name):
    a = _assignment(course, due)
    _run(a, student, settings, datetime(2026, 12, 1, 9, 30, tzinfo=BERLIN)).__class__.objects.update(is_test_run=False)
    for name, args in (("submissions:index", [course.slug]), ("submissions:detail", [course.slug, a.slug])):
        html = client_for(student).get(reverse(name, args=args)).content.decode()
        assert re.search(rf'<time datetime="{re.escape(due.isoformat())}" data-local-time>[^<]*23:59 {zone_name}</time>', html), (
            name, re.findall(r"<time[^>]*>[^<]*</time>", html))
    html = client_for(student).get(reverse("submissions:detail", args=[course.slug, a.slug])).content.decode()
    assert re.search(r'submitted <time datetime="2026-12-01T09:30:00\+01:00" data-local-time>01\.12\.2026 09:30:00 CET</time>',
                     html)
    # Every time of day on the page names a zone.
    text = re.sub(r"<[^>]+>", " ", html)
    bare = [m.group(0) for m in re.finditer(r"\b\d\d:\d\d(?::\d\d)?(?![:\d])(?!\s*(CET|CEST|UTC))", text)]
    assert not bare, bare


def test_a_course_in_another_zone_shows_that_zone(client_for, course, student, settings):
    course.time_zone = "America/New_York"
    course.save()
    a = _assignment(course, datetime(2026, 12, 18, 23, 59, tzinfo=BERLIN))
    html = client_for(student).get(reverse("submissions:detail", args=[course.slug, a.slug])).content.decode()
    assert re.search(r"<time datetime=\"2026-12-18T17:59:00-05:00\" data-local-time>[^<]*17:59 EST</time>", html)
