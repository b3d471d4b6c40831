"""Roster sync through NRPS: new LMS members are enrolled (accounts linked by the LMS's subject id),
members the LMS reports inactive or no longer lists are marked inactive here (Membership.is_active),
never deleted: their submissions, attempts and grades stay."""
from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from lti_tool.models import LtiMembership, LtiUser
from pylti1p3.exception import LtiException
from pylti1p3.names_roles import NamesRolesProvisioningService
from requests import RequestException

from courseplatform.courses.models import Membership

from .accounts import account_for, enrol, map_roles
from .models import CourseLink
from .net import service_connector

log = logging.getLogger("courseplatform.lti")


@dataclass
class SyncResult:
    ok: bool
    message: str
    enrolled: int = 0
    dropped: int = 0


def sync_roster(link: CourseLink) -> SyncResult:
    context = link.context
    if not context.memberships_url:
        result = SyncResult(False, f"{context}: the LMS did not offer its roster service (NRPS) to this tool.")
    else:
        try:
            nrps = NamesRolesProvisioningService(service_connector(context.deployment.registration),
                                                 {"context_memberships_url": context.memberships_url})
            members = list(nrps.get_members())
            result = _apply(link, members)
        except (LtiException, RequestException, KeyError, TypeError) as exc:
            log.warning("LTI roster sync failed for %s: %s", link, exc)
            result = SyncResult(False, f"{context}: the roster could not be read from the LMS ({exc}).")
    CourseLink.objects.filter(pk=link.pk).update(roster_synced_at=timezone.now(), roster_message=result.message[:500])
    return result


@transaction.atomic
def _apply(link: CourseLink, members: list[dict]) -> SyncResult:
    context, course = link.context, link.course
    context.update_memberships(members)  # django-lti's LtiUser / LtiMembership rows
    registration = context.deployment.registration
    enrolled = dropped = 0
    listed = set()
    for member in members:
        lti_user = LtiUser.objects.get(registration=registration, sub=member["user_id"])
        listed.add(lti_user.pk)
        role = map_roles(member.get("roles"))
        if role is None:
            continue
        active = member.get("status", "Active") == "Active"
        if active:
            existed = lti_user.auth_user_id and Membership.objects.filter(
                course=course, user_id=lti_user.auth_user_id, is_active=True).exists()
            enrol(course, account_for(lti_user), role)
            enrolled += not existed
        elif lti_user.auth_user_id:
            dropped += Membership.objects.filter(course=course, user_id=lti_user.auth_user_id, is_active=True).update(
                is_active=False)
    # No longer listed by the LMS: dropped too.
    gone = LtiMembership.objects.filter(context=context).exclude(user_id__in=listed)
    gone_users = [m.user.auth_user_id for m in gone.select_related("user") if m.user.auth_user_id]
    gone.update(is_active=False)
    dropped += Membership.objects.filter(course=course, user_id__in=gone_users, is_active=True).update(is_active=False)
    msg = f"{context}: {len(members)} member(s) in the LMS, {enrolled} newly enrolled, {dropped} marked inactive."
    log.info("LTI roster sync: %s", msg)
    return SyncResult(True, msg, enrolled, dropped)
