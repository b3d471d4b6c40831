"""The tool's signing keys (django-lti's Key): rotation keeps the previous keys in the JWKS for a grace
period, because LMSs cache a tool's key set."""
from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from lti_tool.models import Key


@transaction.atomic
def rotate() -> tuple[Key, int]:
    """A new key signs from now on (the newest active key signs); keys older than the grace period leave
    the JWKS. Returns the new key and how many were deactivated."""
    cutoff = timezone.now() - timedelta(days=settings.LTI_KEY_GRACE_DAYS)
    dropped = Key.objects.active().filter(datetime_created__lt=cutoff).update(is_active=False)
    return Key.objects.generate(), dropped
