"""The staff queue page: queue lengths, oldest waiting, workers alive, grading time percentiles."""
from __future__ import annotations

from django.shortcuts import render

from courseplatform.courses.models import STAFF_ROLES
from courseplatform.courses.permissions import course_role_required

from .queue import staff_overview


@course_role_required(*STAFF_ROLES)
def staff_queue(request, course_slug):
    data = staff_overview()
    # Queue lengths are site-wide (all courses share the workers); pack times only for this course.
    data["packs"] = [p for p in data["packs"] if p["course"] == request.course.slug]
    template = "submissions/_queue_panel.html" if request.htmx else "submissions/queue.html"
    return render(request, template, {**data, "course": request.course})
