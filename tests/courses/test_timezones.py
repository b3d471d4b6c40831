"""One time zone per course: the web shows a deadline in the course's zone, and the API/CLI helper
gives the same wall-clock time as ISO 8601 with its offset and the zone's name."""
from __future__ import annotations

from datetime import datetime, timezone as dt_timezone

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from courseplatform.core.timezones import course_time, iso_local, validate_zone

pytestmark = pytest.mark.django_db


def test_course_time_is_local_with_offset_and_zone_name(course):
    course.time_zone = "America/New_York"
    course.save()
    instant = datetime(2026, 11, 14, 4, 59, tzinfo=dt_timezone.utc)  # 23:59 in New York (UTC-5)
    assert course_time(instant, course) == {"at": "2026-11-13T23:59:00-05:00", "tz": "America/New_York"}
    course.time_zone = "Europe/Berlin"
    assert iso_local(instant, course) == "2026-11-14T05:59:00+01:00"
    assert datetime.fromisoformat(iso_local(instant, course)) == instant  # still the same instant
    with pytest.raises(ValidationError):
        validate_zone("Mars/Olympus_Mons")


def test_course_pages_render_dates_in_the_course_zone(course, student, client_for):
    from courseplatform.submissions.models import Assignment

    due = datetime(2026, 11, 13, 14, 59, tzinfo=dt_timezone.utc)  # 23:59 in Tokyo, 15:59 in Berlin
    a = Assignment.objects.create(course=course, slug="tz", title="Zones", points=10, accepted_kinds=["py"],
                                  due_at=due, handout_html="<p>x</p>")
    url = reverse("submissions:detail", args=[course.slug, a.slug])
    course.time_zone = "Asia/Tokyo"
    course.save()
    page = client_for(student).get(url).content.decode()
    assert "23:59" in page and "15:59" not in page
    course.time_zone = "Europe/Berlin"
    course.save()
    page = client_for(student).get(url).content.decode()
    assert "15:59" in page and "23:59" not in page
    assert str(timezone.get_current_timezone()) == settings.TIME_ZONE  # activated only during a request
