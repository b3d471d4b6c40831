"""Course-dashboard panel: a student's total so far; staff get the class average and the flagged students."""
from __future__ import annotations

from courseplatform.core.hooks import Panel
from courseplatform.courses.models import Role

from . import compute


def panels(request, course, membership) -> list[Panel]:
    if membership.role == Role.STUDENT:
        book = compute.build(course, users=[request.user])
        row = book.row_for(request.user.id)
        return [Panel(title="My grades", template="gradebook/panels/student.html", order=60,
                      context={"row": row, "percents": row.percent_list(book.categories), "labels": compute.LABELS})]
    book = compute.build(course)
    totals = [r.total for r in book.rows if r.total is not None]
    flagged = [r for r in book.rows if r.flags]
    return [Panel(title="Gradebook", template="gradebook/panels/staff.html", order=60,
                  context={"students": len(book.rows), "items": len(book.items),
                         "average": sum(totals) / len(totals) if totals else None, "flagged": flagged,
                         "errors": book.errors})]
