"""Times on the web, with their zone (issue 28): a built-in template library (settings.TEMPLATES
"builtins"), so every template has it without a {% load %}.

    {{ assignment.due_at|when:"D d.m.Y H:i" }}
      -> <time datetime="2026-12-18T23:59:00+01:00" data-local-time>Fri 18.12.2026 23:59 CET</time>

The text is the course's wall-clock time (course_role_required activates the course's zone) with
the zone's abbreviation; static/js/localtime.js adds the reader's own time after it where the
browser's zone differs. `zoned` is the same text without markup (attributes, messages).
`duration_words` turns an ISO 8601 duration (django-axes' "PT15M") or a timedelta into words.
"""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from django import template
from django.template.defaultfilters import date as date_filter
from django.utils import dateformat, timezone
from django.utils.html import format_html

register = template.Library()

DEFAULT = "D d.m.Y H:i"


def zoned_text(value: datetime, fmt: str = DEFAULT) -> str:
    """The time in the active zone with the zone's abbreviation: "Fri 18.12.2026 23:59 CET"."""
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    return dateformat.format(local, f"{fmt} T").strip()


@register.filter(is_safe=True)
def when(value, fmt: str = DEFAULT):
    if value in (None, ""):
        return ""
    if not isinstance(value, datetime) or not timezone.is_aware(value):
        return date_filter(value, fmt)
    local = timezone.localtime(value)
    return format_html('<time datetime="{}" data-local-time>{}</time>', local.isoformat(timespec="seconds"),
                       zoned_text(value, fmt))


@register.filter
def zoned(value, fmt: str = DEFAULT) -> str:
    if value in (None, ""):
        return ""
    if not isinstance(value, datetime):
        return date_filter(value, fmt) if isinstance(value, date) else str(value)
    return zoned_text(value, fmt)


_ISO = re.compile(r"^P(?:(?P<days>\d+)D)?(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


@register.filter
def duration_words(value) -> str:
    """'PT15M' or timedelta(minutes=15) -> '15 minutes'; 'PT1H30M' -> '1 hour 30 minutes'."""
    if isinstance(value, timedelta):
        seconds = int(value.total_seconds())
    else:
        m = _ISO.match(str(value or "").strip())
        if not m or not any(m.groupdict().values()):
            return str(value or "")
        g = {k: float(v or 0) for k, v in m.groupdict().items()}
        seconds = int(g["days"] * 86400 + g["hours"] * 3600 + g["minutes"] * 60 + g["seconds"])
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [_plural(n, w) for n, w in ((days, "day"), (hours, "hour"), (minutes, "minute")) if n]
    if secs and not parts:
        parts.append(_plural(secs, "second"))
    return " ".join(parts) or "a moment"
