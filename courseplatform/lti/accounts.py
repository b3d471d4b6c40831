"""Who a launch is: the LMS roles mapped onto a course role, and the account linked to (issuer, subject)."""
from __future__ import annotations

import hashlib

from django.contrib.auth import get_user_model
from django.db import transaction
from lti_tool.models import LtiUser

from courseplatform.courses.models import Membership, Role

_CTX = "http://purl.imsglobal.org/vocab/lis/v2/membership"
TA_ROLES = {f"{_CTX}/Instructor#TeachingAssistant", f"{_CTX}#TeachingAssistant", "TeachingAssistant"}
INSTRUCTOR_ROLES = {f"{_CTX}#Instructor", f"{_CTX}#Administrator", f"{_CTX}/Instructor#Instructor",
                    "Instructor", "Administrator"}
LEARNER_ROLES = {f"{_CTX}#Learner", f"{_CTX}/Learner#Learner", "Learner"}


def map_roles(roles) -> str | None:
    """The course role for the LTI context roles of a launch or an NRPS member; None when no role we
    know is among them (system and institution roles alone, mentors, content developers)."""
    roles = set(roles or [])
    if roles & TA_ROLES:  # a TA carries the Instructor role with the TeachingAssistant sub-role
        return Role.TA
    if roles & INSTRUCTOR_ROLES:
        return Role.INSTRUCTOR
    if roles & LEARNER_ROLES:
        return Role.STUDENT
    return None


def username_for(lti_user: LtiUser) -> str:
    digest = hashlib.sha256(f"{lti_user.registration.issuer}\n{lti_user.sub}".encode()).hexdigest()
    return f"lti-{digest[:12]}"


@transaction.atomic
def account_for(lti_user: LtiUser):
    """The site account linked to this (issuer, subject): created on first sight, never looked up by
    e-mail (an LMS account whose e-mail matches a local one does not take it over)."""
    lti_user = LtiUser.objects.select_for_update().get(pk=lti_user.pk)
    User = get_user_model()
    user = lti_user.auth_user
    if user is None:
        user = User(username=username_for(lti_user))
        user.set_unusable_password()
    user.first_name = (lti_user.given_name or "")[:150] or user.first_name
    user.last_name = (lti_user.family_name or "")[:150] or user.last_name
    if not user.first_name and lti_user.name:
        user.first_name = lti_user.name[:150]
    if lti_user.email:
        user.email = lti_user.email
    user.save()
    if lti_user.auth_user_id != user.pk:
        lti_user.auth_user = user
        lti_user.save(update_fields=["auth_user"])
    return user


def enrol(course, user, role: str) -> Membership:
    """The LMS is the source of truth for a linked course's roles; a member dropped earlier is back."""
    membership, created = Membership.objects.get_or_create(course=course, user=user,
                                                           defaults={"role": role, "is_active": True})
    if not created and (membership.role != role or not membership.is_active):
        membership.role, membership.is_active = role, True
        membership.save(update_fields=["role", "is_active"])
    return membership
