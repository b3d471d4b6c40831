"""Course-dashboard panels: a student's group and next milestone; staff's matrix summary."""
from __future__ import annotations

from django.utils import timezone

from courseplatform.core.hooks import Panel
from courseplatform.courses.models import Role

from . import services
from .models import Delivery, Group, Milestone, MilestoneGrade, ProjectSettings


def panels(request, course, membership) -> list[Panel]:
    now = timezone.now()
    nxt = services.next_milestone(course, now)
    if membership.role == Role.STUDENT:
        group = services.group_of(course, request.user)
        cfg = ProjectSettings.for_course(course)
        return [Panel(title="Project", template="projects/panels/student.html", order=30, context={
                "group": group, "members": group.member_users() if group else [], "next": nxt,
                "next_state": services.state_for_group(nxt, group, now) if nxt else None,
                "locked": cfg.is_locked(now), "self_forming": cfg.students_form_groups,
            })]
    groups = list(Group.objects.filter(course=course).order_by("name"))
    missing = []
    delivered = 0
    if nxt is not None and nxt.deliverable != "none":
        done = set(Delivery.objects.filter(milestone=nxt).values_list("group_id", flat=True))
        missing = [g for g in groups if g.id not in done]
        delivered = len(groups) - len(missing)
    overdue = 0
    past = Milestone.objects.filter(course=course, due__lt=now).exclude(deliverable="none")
    if groups:
        for m in past:
            done = set(Delivery.objects.filter(milestone=m).values_list("group_id", flat=True))
            overdue += sum(1 for g in groups if g.id not in done)
    graded = set(MilestoneGrade.objects.filter(milestone__course=course).values_list("milestone_id", "group_id"))
    ungraded = sum(
        1 for key in Delivery.objects.filter(milestone__course=course, milestone__due__lt=now)
        .values_list("milestone_id", "group_id") if key not in graded
    )
    return [Panel(title="Project milestones", template="projects/panels/staff.html", order=30, context={
            "next": nxt, "groups": groups, "missing": missing, "delivered": delivered, "overdue": overdue,
            "ungraded": ungraded, "without_group": services.students_without_group(course).count(),
        })]
