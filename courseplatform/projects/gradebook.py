"""Milestone items for the course gradebook: the group's grade goes to each member (unless overridden)."""
from __future__ import annotations

from django.urls import reverse

from courseplatform.core.hooks import GradeItem
from courseplatform.courses.models import Membership

from .models import Delivery, GroupMember, Milestone, MilestoneGrade


def items(course) -> list[GradeItem]:
    students = list(Membership.objects.filter(course=course).students().values_list("user_id", flat=True))
    group_of = dict(GroupMember.objects.filter(course=course).values_list("user_id", "group_id"))
    grades = {
        (g.milestone_id, g.group_id): g
        for g in MilestoneGrade.objects.filter(milestone__course=course).prefetch_related("overrides")
    }
    late, delivered = set(), set()
    for d in Delivery.objects.filter(milestone__course=course).prefetch_related("versions"):
        versions = sorted(d.versions.all(), key=lambda v: v.number)
        if versions:
            delivered.add((d.milestone_id, d.group_id))
        if versions and versions[-1].is_late:
            late.add((d.milestone_id, d.group_id))
    result = []
    for m in Milestone.objects.filter(course=course).prefetch_related("criteria"):
        mx = m.max_points
        if mx <= 0:
            continue  # e.g. "form groups": nothing to grade
        scores, notes, pending = {}, {}, set()
        for uid in students:
            gid = group_of.get(uid)
            if gid is None:
                scores[uid] = None
                notes[uid] = "no group"
                continue
            g = grades.get((m.id, gid))
            scores[uid] = g.score_for(uid) if g else None
            if scores[uid] is None and (m.id, gid) in delivered:
                pending.add(uid)  # delivered, waiting for the rubric grade: not a 0
            bits = []
            if (m.id, gid) in late:
                bits.append("late")
            if g and any(o.user_id == uid for o in g.overrides.all()):
                bits.append("individual score")
            if bits:
                notes[uid] = ", ".join(bits)
        result.append(GradeItem(
            key=f"milestone:{m.slug}", title=m.title, category="milestones", max_points=mx, scores=scores,
            due=m.due, url=reverse("projects:milestone", args=[course.slug, m.pk]), notes=notes,
            pending=pending,
        ))
    return result
