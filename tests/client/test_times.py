"""Issue 11, time zones: one zone per course, shown the same everywhere. The same deadline reads
the same wall-clock time and zone on the web page, in the API (ISO 8601 with the course's offset,
plus the zone's name) and in the CLI's output; submission times too."""
from __future__ import annotations

import io
import re
from contextlib import redirect_stdout
from datetime import datetime
from datetime import timezone as dt_timezone
from pathlib import Path
from zoneinfo import ZoneInfo
import sys

import pytest
from django.urls import reverse

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "client"))
from courseplatform_client import _render, cli  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True)

DUE = datetime(2026, 11, 14, 4, 59, tzinfo=dt_timezone.utc)  # Fri 13.11. 23:59 in New York, Sat 05:59 in Berlin


@pytest.mark.parametrize("zone, web, offset", [
    ("America/New_York", "Fri 13.11.2026 23:59", "2026-11-13T23:59:00-05:00"),
    ("Europe/Berlin", "Sat 14.11.2026 05:59", "2026-11-14T05:59:00+01:00"),
    ("Asia/Tokyo", "Sat 14.11.2026 13:59", "2026-11-14T13:59:00+09:00"),
])
def test_a_deadline_reads_the_same_on_the_web_in_the_api_and_in_the_cli(live_server, course, student, client_for,
                                                                       zone, web, offset):
    from courseplatform.submissions.models import ApiToken, Assignment, Submission

    course.time_zone = zone
    course.save()
    a = Assignment.objects.create(course=course, slug="tz", title="Zones", points=10, accepted_kinds=["py"],
                                  due_at=DUE, handout_html="<p>x</p>", released=True)
    Submission.objects.create(assignment=a, student=student, attempt=1, sha256="0" * 64, blob="x", original_name="tz.py",
                              kind="py", size=1, created_at=DUE, queued_at=DUE, state="graded", score=5, max_score=10)

    page = client_for(student).get(reverse("submissions:detail", args=[course.slug, a.slug])).content.decode()
    cell = re.search(r'<dd class="deadline">(.*?)</dd>', page, re.S).group(1)
    shown = re.search(r'<time datetime="([^"]+)"[^>]*>([^<]+)</time>', cell)
    assert shown, cell
    assert datetime.fromisoformat(shown.group(1)) == DUE and shown.group(1) == offset  # the instant, in the course's zone
    assert shown.group(2).startswith(web + " ") and shown.group(2) == f"{web} {DUE.astimezone(ZoneInfo(zone)).tzname()}"

    key = ApiToken.issue(student)[1]
    api = client_for(student).get("/api/courses/llms/assignments/tz", HTTP_AUTHORIZATION=f"Bearer {key}").json()
    assert api["due_at"] == api["your_due_at"] == offset and api["time_zone"] == zone
    assert datetime.fromisoformat(api["due_at"]) == DUE  # still the exact instant
    subs = client_for(student).get("/api/courses/llms/assignments/tz/submissions",
                                   HTTP_AUTHORIZATION=f"Bearer {key}").json()
    assert subs[0]["submitted_at"] == offset and subs[0]["time_zone"] == zone

    out = io.StringIO()
    with redirect_stdout(out):
        code = cli.main(["assignments", "llms", "--server", live_server.url, "--token", key])
    assert code == 0
    assert f"due {web} ({zone})" in out.getvalue()
    assert f"submitted {web} ({zone})" in _render.text({**subs[0], "tests": [], "notes": []})


def test_cli_time_without_a_zone_name_shows_the_offset_and_never_utc_letters():
    assert _render.when("2026-11-13T22:59:00Z") == "Fri 13.11.2026 22:59 (UTC+0000)"
    assert _render.when("2026-11-13T23:59:00+01:00", "Europe/Berlin") == "Fri 13.11.2026 23:59 (Europe/Berlin)"
    assert "\x1b" not in _render.when("not a time\x1b[2J")
    assert _render.when(None) == "-"
