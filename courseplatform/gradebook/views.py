"""The course gradebook page (staff: everyone; a student: their own row only), weights and CSV export."""
from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from courseplatform.core import csvexport
from courseplatform.courses.models import ANY_ROLE, STAFF_ROLES, Role
from courseplatform.courses.permissions import course_role_required

from . import compute
from .forms import WeightsForm
from .models import CategoryWeights


@require_GET
@course_role_required(*ANY_ROLE)
def index(request, course_slug):
    course = request.course
    weights = CategoryWeights.for_course(course)
    if request.membership.role == Role.STUDENT:
        book = compute.build(course, users=[request.user], weights=weights.as_dict())
        row = book.row_for(request.user.id)
        return render(request, "gradebook/student.html", {
            "book": book, "row": row, "cells": row.cells(book.items), "labels": compute.LABELS,
            "percents": row.percent_list(book.categories), "effective": book.effective_weights(),
        })
    book = compute.build(course, weights=weights.as_dict())
    return render(request, "gradebook/staff.html", {
        "book": book, "labels": compute.LABELS, "form": WeightsForm(instance=weights),
        "effective": book.effective_weights(), "rows": [(r, r.cells(book.items), r.percent_list(book.categories))
                                                        for r in book.rows],
    })


@require_POST
@course_role_required(Role.INSTRUCTOR)
def weights(request, course_slug):
    obj = CategoryWeights.for_course(request.course)
    form = WeightsForm(request.POST, instance=obj)
    if form.is_valid():
        form.save()
        messages.success(request, "Category weights saved.")
    else:
        errors = "; ".join(f"{'' if k == '__all__' else k + ': '}{' '.join(v)}" for k, v in form.errors.items())
        messages.error(request, f"Weights not saved: {errors}")
    return redirect(reverse("gradebook:index", args=[course_slug]))


@require_GET
@course_role_required(*STAFF_ROLES)
def export_csv(request, course_slug):
    book = compute.build(request.course)
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    return csvexport.csv_response(f"gradebook-{request.course.slug}-{stamp}.csv", compute.csv_rows(book))


