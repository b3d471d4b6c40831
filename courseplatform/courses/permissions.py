"""Course-role checks used by every view.

    @course_role_required("instructor", "ta")
    def roster(request, course_slug): ...   # request.course, request.membership are set

A user without a membership in the course gets 404 (the course's existence is not
revealed); a member whose role is not allowed gets 403. Superusers pass as instructors.
"""
from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404

from .models import ANY_ROLE, Course, Membership, Role
from courseplatform.core.timezones import course_zone


def get_membership(user, course: Course) -> Membership | None:
    if not user.is_authenticated:
        return None
    membership = Membership.objects.filter(course=course, user=user).first()
    if membership is None and user.is_superuser:
        # Superusers act as instructors everywhere, without a stored row.
        membership = Membership(course=course, user=user, role=Role.INSTRUCTOR)
    return membership


def course_membership(user, course_slug: str) -> tuple[Course, Membership]:
    """The course and the user's membership in it (a superuser's is an instructor's without a row);
    404 for a missing course and for a non-member alike. A member's course comes with the
    membership in one query (every page and API call of a course starts here)."""
    membership = None
    if user.is_authenticated:
        membership = Membership.objects.select_related("course").filter(course__slug=course_slug, user=user).first()
    if membership is not None:
        return membership.course, membership
    course = get_object_or_404(Course, slug=course_slug)
    membership = get_membership(user, course)
    if membership is None:
        raise Http404("No such course.")
    return course, membership


def require_course_role(request, course_slug: str, roles=ANY_ROLE) -> Membership:
    """Resolve the course, check the role, set request.course/request.membership."""
    course, membership = course_membership(request.user, course_slug)
    if not membership.is_active:  # dropped in the LMS (courseplatform/lti roster sync): work kept, no access
        raise PermissionDenied("You are no longer enrolled in this course.")
    if membership.role not in roles:
        raise PermissionDenied("Your role in this course does not allow this page.")
    request.course = course
    request.membership = membership
    return membership


def course_role_required(*roles):
    allowed = tuple(roles) or ANY_ROLE

    def decorator(view):
        @wraps(view)
        def wrapper(request, course_slug, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            require_course_role(request, course_slug, allowed)
            with course_zone(request.course):  # dates on the page in the course's time zone
                return view(request, course_slug, *args, **kwargs)

        return wrapper

    return decorator
