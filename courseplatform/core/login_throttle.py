"""Failed-login limits for django-axes: one limit per account, a much higher one per address.

Axes counts the recent failures of each lockout parameter (AXES_LOCKOUT_PARAMETERS: the username,
and separately the client address) and locks when the largest count reaches AXES_FAILURE_LIMIT.
One number for both would let a lecture hall behind one NAT address (300 students, a few typos
each) lock itself out. So AXES_FAILURE_LIMIT is `failure_limit` below, which axes calls with the
request and the credentials: it counts the two kinds of failures itself (the same rows and the
same cool-off window as axes' database handler) and answers a limit that the largest count reaches
exactly when the account has AXES_USERNAME_FAILURE_LIMIT failures or the address has
AXES_IP_FAILURE_LIMIT failures.
"""
from __future__ import annotations

from axes.helpers import get_client_username, get_cool_off
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Q, Sum
from django.utils import timezone


def _failures(since, username, address) -> tuple[int, int]:
    """The recent failures of the account and of the address, in one query."""
    none = Q(pk__in=[])
    by_account = Q(username=username) if username else none
    by_address = Q(ip_address=address) if address else none
    counts = AccessAttempt.objects.filter(by_account | by_address, attempt_time__gte=since).aggregate(
        account=Sum("failures_since_start", filter=by_account), address=Sum("failures_since_start", filter=by_address))
    return counts["account"] or 0, counts["address"] or 0


def failure_limit(request, credentials) -> int:
    username = get_client_username(request, credentials) if credentials is not None else None
    address = getattr(request, "axes_ip_address", None)
    since = (getattr(request, "axes_attempt_time", None) or timezone.now()) - get_cool_off(request)
    by_account, by_address = _failures(since, username, address) if (username or address) else (0, 0)
    locked = by_account >= settings.AXES_USERNAME_FAILURE_LIMIT or by_address >= settings.AXES_IP_FAILURE_LIMIT
    largest = max(by_account, by_address)
    return largest if locked else largest + 1
