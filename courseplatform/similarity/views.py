"""Staff pages of the similarity check: the ranked report, the side-by-side view of a pair,
reviews, public sources, settings and the CSV export. Students never reach any of it: every view
is staff-only (course_role_required), and nothing here is linked from a student's page."""
from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from courseplatform.core import csvexport
from courseplatform.courses.models import STAFF_ROLES, Role
from courseplatform.courses.permissions import course_role_required
from courseplatform.submissions.models import Assignment

from . import services
from .forms import PublicSourceForm, ReviewForm, SettingsForm
from .models import PairReview, PublicSource, SimilarityCheck, SimilarityPair

PALETTE = 8          # colours for the matching regions of a pair (similarity.css: .sim-m0 .. .sim-m7)
BELOW_SHOWN = 15     # pairs below the threshold listed for comparison


def _assignment(request, slug) -> Assignment:
    return get_object_or_404(Assignment, course=request.course, slug=slug)


def _latest(assignment):
    return SimilarityCheck.objects.filter(assignment=assignment).select_related("started_by").first()


def _latest_done(assignment):
    return (SimilarityCheck.objects.filter(assignment=assignment, state=SimilarityCheck.State.DONE)
            .order_by("-finished_at", "-id").first())


def _key(pair) -> tuple[int, int]:
    a, b = pair.sub_a.student_id, pair.sub_b.student_id
    return (a, b) if a < b else (b, a)


def _reviews(assignment) -> dict:
    return {(r.student_a_id, r.student_b_id): r for r in PairReview.objects.filter(assignment=assignment)}


def _who(user) -> str:
    name = user.get_full_name()
    return f"{name} ({user.username})" if name else user.username


@course_role_required(*STAFF_ROLES)
def report(request, course_slug, slug):
    assignment = _assignment(request, slug)
    latest = _latest(assignment)
    done = _latest_done(assignment)
    settings = services.settings_for(assignment)
    pairs, below, clusters = [], [], []
    if done is not None:
        rows = list(SimilarityPair.objects.filter(check_run=done).select_related("sub_a__student", "sub_b__student"))
        reviews = _reviews(assignment)
        for p in rows:
            p.review = reviews.get(_key(p))
        threshold = done.threshold
        pairs = [p for p in rows if p.score >= threshold]
        shown = rows if request.GET.get("all") else rows[: len(pairs) + BELOW_SHOWN]
        below = [p for p in shown if p.score < threshold]
        subs = {p.sub_a_id: p.sub_a for p in rows} | {p.sub_b_id: p.sub_b for p in rows}
        clusters = [[subs[i] for i in c if i in subs] for c in done.clusters]
    return render(request, "similarity/report.html", {
        "assignment": assignment, "check": latest, "done": done, "pairs": pairs, "below": below,
        "clusters": clusters, "settings": settings, "settings_form": SettingsForm(instance=settings),
        "is_instructor": request.membership.role == Role.INSTRUCTOR,
        "public_count": PublicSource.objects.filter(assignment=assignment).count(),
        "show_all": bool(request.GET.get("all")),
        "candidates": len(services.latest_submissions(assignment)),
    })


@course_role_required(*STAFF_ROLES)
def status(request, course_slug, slug):
    """The running check's progress card, polled by htmx every second until the check ends."""
    assignment = _assignment(request, slug)
    check = _latest(assignment)
    response = render(request, "similarity/_status.html", {"assignment": assignment, "check": check,
                                                             "done": _latest_done(assignment)})
    if getattr(request, "htmx", False) and check is not None and check.is_final:
        response["HX-Refresh"] = "true"  # the check ended: reload the page to show its report
    return response


@require_POST
@course_role_required(*STAFF_ROLES)
def start(request, course_slug, slug):
    assignment = _assignment(request, slug)
    latest = _latest(assignment)
    if latest is not None and not latest.is_final and services.is_stale(latest):
        services.give_up(latest)  # its worker or its message was lost: it will never finish
        latest.refresh_from_db()
    if latest is not None and not latest.is_final:
        messages.info(request, "A check of this assignment is already running.")
    elif not services.latest_submissions(assignment):
        messages.error(request, "No student has submitted yet: there is nothing to compare.")
    else:
        services.start_check(assignment, request.user)
        messages.success(request, "Similarity check started.")
    return redirect("similarity:report", course_slug, slug)


@require_POST
@course_role_required(Role.INSTRUCTOR)
def edit_settings(request, course_slug, slug):
    assignment = _assignment(request, slug)
    form = SettingsForm(request.POST, instance=services.settings_for(assignment))
    if form.is_valid():
        form.save()
        messages.success(request, "Similarity settings saved; they apply to the next check.")
    else:
        errors = "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())
        messages.error(request, f"The settings were not saved ({errors}).")
    return redirect("similarity:report", course_slug, slug)


def _pair(assignment, pair_id) -> SimilarityPair:
    return get_object_or_404(SimilarityPair.objects.select_related("check_run", "sub_a__student", "sub_b__student"),
                             check_run__assignment=assignment, pk=pair_id)


def _side(text: str, regions: list, side: str) -> list[dict]:
    """The lines of one file with, for each, the region that covers it (copy regions first)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    marks: dict[int, dict] = {}
    for r in regions:
        lo, hi = r[side]
        for n in range(max(1, lo), min(len(lines), hi) + 1):
            marks.setdefault(n, r)
    out = []
    for n, text_line in enumerate(lines, 1):
        r = marks.get(n)
        out.append({"n": n, "text": text_line, "region": r})
    return out


@course_role_required(*STAFF_ROLES)
def pair(request, course_slug, slug, pair_id):
    assignment = _assignment(request, slug)
    p = _pair(assignment, pair_id)
    regions = []
    colour = 0
    for i, r in enumerate(p.regions or []):
        r = dict(r, index=i + 1)
        if r.get("kind") == "copy":
            r["css"] = f"sim-m{colour % PALETTE}"
            colour += 1
        else:
            r["css"] = "sim-pub" if r.get("kind") == "public" else "sim-common"
        regions.append(r)
    src_a, src_b = services.read_submission(p.sub_a), services.read_submission(p.sub_b)
    review = _reviews(assignment).get(_key(p))
    return render(request, "similarity/pair.html", {
        "assignment": assignment, "p": p, "regions": regions, "review": review,
        "left": _side(src_a.text, regions, "a"), "right": _side(src_b.text, regions, "b"),
        "notes_a": src_a.notes, "notes_b": src_b.notes,
        "form": ReviewForm(initial={"status": review.status if review else PairReview.Status.REVIEWED,
                                    "note": review.note if review else ""}),
    })


@require_POST
@course_role_required(*STAFF_ROLES)
def review(request, course_slug, slug, pair_id):
    assignment = _assignment(request, slug)
    p = _pair(assignment, pair_id)
    form = ReviewForm(request.POST)
    if not form.is_valid():
        errors = "; ".join(" ".join(v) for v in form.errors.values())
        messages.error(request, f"The review was not saved: {errors}")
        return redirect("similarity:pair", course_slug, slug, p.pk)
    a, b = _key(p)
    if form.cleaned_data["status"] == "clear":
        PairReview.objects.filter(assignment=assignment, student_a_id=a, student_b_id=b).delete()
        messages.success(request, "The pair is marked as not reviewed.")
    else:
        PairReview.objects.update_or_create(assignment=assignment, student_a_id=a, student_b_id=b, defaults={
            "status": form.cleaned_data["status"], "note": form.cleaned_data["note"], "by": request.user,
            "updated_at": timezone.now()})
        messages.success(request, "Review saved.")
    return redirect("similarity:pair", course_slug, slug, p.pk)


@course_role_required(*STAFF_ROLES)
def export(request, course_slug, slug):
    """Every kept pair of the latest finished check, with reviews (the site's CSV conventions)."""
    assignment = _assignment(request, slug)
    done = _latest_done(assignment)
    if done is None:
        raise Http404("No similarity check has finished for this assignment.")
    reviews = _reviews(assignment)
    rows = [["rank", "score", "flagged", "student_a", "name_a", "submission_a", "file_a", "share_a",
             "beyond_common_a", "student_b", "name_b", "submission_b", "file_b", "share_b", "beyond_common_b",
             "shared_fingerprints", "common_fingerprints", "public_fingerprints", "public_sources",
             "review", "review_note", "check", "checked_at"]]
    for p in SimilarityPair.objects.filter(check_run=done).select_related("sub_a__student", "sub_b__student"):
        r = reviews.get(_key(p))
        ua, ub = p.sub_a.student, p.sub_b.student
        rows.append([p.rank, p.score, "yes" if p.score >= done.threshold else "no",
                     ua.username, ua.get_full_name(), p.sub_a_id, p.sub_a.original_name, p.share_a, p.beyond_a,
                     ub.username, ub.get_full_name(), p.sub_b_id, p.sub_b.original_name, p.share_b, p.beyond_b,
                     p.shared, p.common, p.public, "; ".join(p.public_sources),
                     r.status if r else "", r.note if r else "", done.pk,
                     timezone.localtime(done.finished_at).isoformat() if done.finished_at else ""])
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    return csvexport.csv_response(f"{request.course.slug}-{assignment.slug}-similarity-{stamp}.csv", rows)


@course_role_required(*STAFF_ROLES)
def sources(request, course_slug, slug):
    """The assignment's public sources: upload (.py, .ipynb, .zip) and remove."""
    assignment = _assignment(request, slug)
    form = PublicSourceForm()
    status = 200
    if request.method == "POST":
        raw = request.POST.get("delete", "")
        if raw:
            n, _ = PublicSource.objects.filter(assignment=assignment, pk=int(raw) if raw.isdigit() else 0).delete()
            messages.success(request, "Public source removed." if n else "No such public source.")
            return redirect("similarity:sources", course_slug, slug)
        form = PublicSourceForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                rows = services.add_public_sources(assignment, request.user, form.cleaned_data["file"])
            except services.PublicRejected as exc:
                form.add_error("file", str(exc))
            else:
                messages.success(request, f"{len(rows)} public source file(s) added; they apply to the next check.")
                return redirect("similarity:sources", course_slug, slug)
        status = 400
    return render(request, "similarity/sources.html", {
        "assignment": assignment, "form": form,
        "sources": PublicSource.objects.filter(assignment=assignment).select_related("uploaded_by"),
    }, status=status)
