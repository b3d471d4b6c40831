"""One time zone per course (Course.time_zone), shown the same on the web, in the API and the CLI.

Web pages of a course render their dates in the course's zone (permissions.course_role_required
activates it for the request). The API and the CLI use `course_time(dt, course)`: an ISO 8601 time
in the course's zone with its UTC offset, plus the zone's name, e.g.
{"at": "2026-11-13T23:59:00+01:00", "tz": "Europe/Berlin"}: the same wall-clock time the web shows,
and still an exact instant for a program.
"""
from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone


def zone(course) -> ZoneInfo:
    name = getattr(course, "time_zone", "") or settings.TIME_ZONE
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(settings.TIME_ZONE)


def validate_zone(name: str) -> None:
    if name not in available_timezones():
        raise ValidationError(f"{name!r} is not a time zone name (e.g. Europe/Berlin, America/New_York).")


def iso_local(dt: datetime | None, course) -> str | None:
    """ISO 8601 in the course's zone, with the offset (seconds precision)."""
    if dt is None:
        return None
    return timezone.localtime(dt, zone(course)).isoformat(timespec="seconds")


def course_time(dt: datetime | None, course) -> dict | None:
    if dt is None:
        return None
    return {"at": iso_local(dt, course), "tz": str(zone(course))}


@contextmanager
def course_zone(course):
    """Render (templates, |date) in the course's zone for the duration of the block."""
    timezone.activate(zone(course))
    try:
        yield
    finally:
        timezone.deactivate()
