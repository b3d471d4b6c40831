"""Dashboard hook: staff see the course's LMS link and passback states (core/hooks.py)."""
from __future__ import annotations

from courseplatform.core.hooks import Panel


def panels(request, course, membership):
    if not membership.is_staff_role:
        return []
    from .models import CourseLink, Passback, PassbackState

    links = CourseLink.objects.filter(course=course).count()
    failed = Passback.objects.filter(link__course=course, state=PassbackState.FAILED).count()
    return [Panel(title="LMS (LTI 1.3)", template="lti/panel.html", order=180,
                  context={"lti_links": links, "lti_failed": failed})]
