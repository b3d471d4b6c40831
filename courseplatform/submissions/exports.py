"""Staff reports of one assignment: the per-student table (staff page) and the zip of every
student's latest submission with an index.csv (the export). The views only wrap these in responses."""
from __future__ import annotations

import zipfile
from collections import defaultdict
from pathlib import Path

from django.db.models import Count
from django.utils import timezone

from courseplatform.core import csvexport
from courseplatform.courses.models import Membership

from . import services
from .models import PENDING_STATES, Assignment, Extension, State, Submission


def student_rows(assignment: Assignment):
    """One row per student of the course: best, latest, counted, attempts, late, extension."""
    members = (
        Membership.objects.filter(course=assignment.course).students()
        .select_related("user")
        .order_by("user__last_name", "user__first_name", "user__username")
    )
    by_student = defaultdict(list)
    for s in Submission.objects.filter(assignment=assignment, is_test_run=False).order_by("-created_at", "-id"):
        by_student[s.student_id].append(s)
    extensions = {e.student_id: e for e in Extension.objects.filter(assignment=assignment)}
    rows = []
    for m in members:
        subs = by_student.get(m.user_id, [])
        graded = [s for s in subs if s.has_score]
        rows.append({
            "user": m.user,
            "latest": subs[0] if subs else None,
            "best": max(graded, key=lambda s: s.score) if graded else None,
            "counted": services.counted_score(assignment, subs),
            "attempts": len(subs),
            "late": sum(1 for s in subs if s.late_days),
            "pending": sum(1 for s in subs if s.state in PENDING_STATES),
            "regrading": sum(1 for s in subs if s.regrading),
            "errors": sum(1 for s in subs if s.state == State.ERROR),
            "extension": extensions.get(m.user_id),
        })
    return rows


class _ZipStream:
    """A write-only file object whose writes are collected and handed out in chunks."""

    def __init__(self):
        self.chunks: list[bytes] = []
        self.pos = 0

    def write(self, data):
        self.chunks.append(bytes(data))
        self.pos += len(data)
        return len(data)

    def tell(self):
        return self.pos

    def flush(self):
        pass

    def pop(self) -> bytes:
        out, self.chunks = b"".join(self.chunks), []
        return out


def export_stream(assignment: Assignment):
    rows = [r for r in student_rows(assignment) if r["latest"]]
    stream = _ZipStream()
    with zipfile.ZipFile(stream, mode="w", compression=zipfile.ZIP_DEFLATED) as archive:
        lines = [["username", "name", "attempt", "submitted_at", "state", "score", "max_score", "late_days",
                  "penalty_percent", "file"]]
        for r in rows:
            s, u = r["latest"], r["user"]
            arcname = f"{assignment.slug}/{u.username}/{Path(s.original_name).name}"
            lines.append([u.username, u.get_full_name(), s.attempt, s.created_at.isoformat(), s.state,
                          s.score, s.max_score or "", s.late_days, s.penalty_percent, arcname])
            path = services.blob_path(s.blob)
            if not path.is_file():
                continue
            info = zipfile.ZipInfo(arcname, date_time=timezone.localtime(s.created_at).timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(info, "w") as out, path.open("rb") as src:
                while chunk := src.read(256 * 1024):
                    out.write(chunk)
                    yield stream.pop()
            yield stream.pop()
        archive.writestr(f"{assignment.slug}/index.csv", csvexport.csv_text(lines))
    yield stream.pop()


def staff_statistics(assignment: Assignment) -> dict:
    """The staff overview's numbers: one row per student (student_rows), the counted scores,
    their number and mean, the submissions per state, and how many graded ones an older pack graded."""
    rows = student_rows(assignment)
    counted = [r["counted"].score for r in rows if r["counted"]]
    subs = Submission.objects.filter(assignment=assignment)
    return {
        "rows": rows,
        "counted": counted,
        "counted_n": len(counted),
        "mean": (sum(counted) / len(counted)) if counted else None,
        "states": dict(subs.values_list("state").annotate(n=Count("id")).values_list("state", "n")),
        "outdated": subs.filter(state=State.GRADED).exclude(pack_hash=assignment.pack_hash).count(),
        # regraded submissions that still count with their previous score until the new one arrives
        "regrading_n": subs.filter(is_test_run=False, state__in=PENDING_STATES, score__isnull=False,
                                   generation__gt=1).count(),
    }
