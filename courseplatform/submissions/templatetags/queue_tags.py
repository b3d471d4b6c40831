"""{% queue_info submission as q %}: where a waiting submission stands (queue.queue_info);
{{ when|from_now }}: "in about 3 min" / "now"."""
from __future__ import annotations

from django import template
from django.utils import timezone

register = template.Library()


@register.simple_tag
def queue_info(submission):
    from courseplatform.submissions.queue import queue_info as info

    try:
        return info(submission)
    except Exception:  # the estimate is a courtesy: never break the page for it
        return None


@register.filter
def from_now(when) -> str:
    if not when:
        return ""
    seconds = (when - timezone.now()).total_seconds()
    if seconds < 30:
        return "any moment now"
    if seconds < 90:
        return "in about a minute"
    if seconds < 3600:
        return f"in about {round(seconds / 60)} min"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"in about {hours} h {minutes:02d} min"
