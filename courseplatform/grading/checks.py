"""The one limit of "Check" (the visible tests only, never an attempt), for an assignment's check
(submissions/check_uploads.py) and a quiz code question's (quizzes/services.request_check): at most
settings.CHECKS_PER_WINDOW checks per settings.CHECK_WINDOW_S, counted in the database (so every web
process and worker agrees), and one waiting or running at a time (each app asks its own rows)."""
from __future__ import annotations

from datetime import timedelta

from django.conf import settings


def limit() -> int:
    return max(1, int(settings.CHECKS_PER_WINDOW))


def window_s() -> int:
    return max(1, int(settings.CHECK_WINDOW_S))


def wait_seconds(created, now) -> int | None:
    """Seconds until the next check is allowed when the window's checks are used up, else None.
    ``created``: a queryset of the person's checks (by created_at)."""
    n = limit()
    recent = list(created.filter(created_at__gte=now - timedelta(seconds=window_s()))
                  .order_by("created_at").values_list("created_at", flat=True)[:n])
    if len(recent) < n:
        return None
    return max(1, int((recent[0] + timedelta(seconds=window_s()) - now).total_seconds() + 0.999))
