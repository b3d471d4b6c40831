"""Assignment pages for students and staff.

Roles: students see released assignments, submit, and see only their own submissions and
files. TAs and instructors see every student's submissions, regrade (one, a student, all)
and export. Only instructors change deadlines, policies and extensions, and re-sync a pack:
those decide grades, while a regrade only recomputes them with the current pack.
"""
from __future__ import annotations

from collections import defaultdict
from functools import wraps
from pathlib import Path

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpResponse, HttpResponseNotAllowed, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.text import slugify
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_POST

from courseplatform.core.charts import histogram_svg
from courseplatform.courses.models import STAFF_ROLES, Membership, Role
from courseplatform.courses.permissions import course_role_required

from . import artifacts as artifact_files
from . import notebooks, services
from .exports import export_stream, staff_statistics
from .forms import AssignmentSettingsForm, ExtensionForm, PackUploadForm, TokenForm, UploadForm
from .leaderboard import board
from .models import ApiToken, Assignment, Extension, PackUpload, Submission
from .packs import UPLOAD_SOURCE, PackRejected, max_pack_bytes, receive, uploads_allowed
from .precheck import check
from .sync import PackInvalid
from .uploads import install_limit
from .validation import UploadRejected, max_bytes

User = get_user_model()


def _assignment(request, slug) -> Assignment:
    qs = Assignment.objects.filter(course=request.course)
    if not request.membership.is_staff_role:
        qs = qs.filter(released=True)
    return get_object_or_404(qs, slug=slug)


def _submission(request, pk) -> Submission:
    """A submission of this course the viewer may see: their own, or any for staff. Others: 404."""
    qs = Submission.objects.select_related("assignment", "student").filter(assignment__course=request.course)
    if not request.membership.is_staff_role:
        qs = qs.filter(student=request.user, assignment__released=True)
    return get_object_or_404(qs, pk=pk)


# --- students ------------------------------------------------------------------------------


@course_role_required()
def index(request, course_slug):
    staff = request.membership.is_staff_role
    assignments = list(Assignment.objects.filter(course=request.course, **({} if staff else {"released": True})))
    rows = []
    if staff:
        stats = services.assignment_stats(assignments)
        for a in assignments:
            rows.append({"a": a, "stats": stats.get(a.pk, {}), "due": a.due_at})
    else:
        mine = defaultdict(list)
        for s in Submission.objects.filter(assignment__in=assignments, student=request.user, is_test_run=False):
            mine[s.assignment_id].append(s)
        now = timezone.now()
        for a in assignments:
            subs = mine.get(a.pk, [])
            due = a.due_for(request.user)
            rows.append({
                "a": a,
                "due": due,
                "counted": services.counted_score(a, subs),
                "latest": subs[0] if subs else None,
                "attempts": len(subs),
                "overdue": bool(due and due < now),
            })
    return render(request, "submissions/index.html", {
        "rows": rows, "staff": staff,
        "can_upload_packs": request.membership.role == Role.INSTRUCTOR and uploads_allowed(request.user),
    })


def _attempt_context(request, assignment, subs):
    staff = request.membership.is_staff_role
    return [{"s": s, "fb": services.feedback(s, staff)} for s in subs]


@course_role_required()
def detail(request, course_slug, slug):
    assignment = _assignment(request, slug)
    staff = request.membership.is_staff_role
    subs = list(Submission.objects.filter(assignment=assignment, student=request.user).select_related("assignment"))
    st = services.standing(assignment, request.user, staff)
    extension = Extension.objects.filter(assignment=assignment, student=request.user).first()
    starters = [k for k in ("py", "ipynb") if assignment.pack_path and (Path(assignment.pack_path) / f"starter.{k}").is_file()]
    counted = services.counted_score(assignment, subs)
    return render(request, "submissions/detail.html", {
        "assignment": assignment,
        "standing": st,
        "extension": extension,
        "attempts": _attempt_context(request, assignment, subs),
        "counted": counted,
        "form": UploadForm(),
        "starters": starters,
        "staff": staff,
        "max_bytes": max_bytes(),
        "accept": ",".join("." + k for k in assignment.kinds),
        "now": timezone.now(),
    })


def too_large_message() -> str:
    return f"The file is larger than the limit of {max_bytes() // (1024 * 1024)} MB."


def upload_view(refuse):
    """For a course page that receives one file by POST (field `file`): the size limit is installed
    before the body is parsed, CSRF is checked right after (csrf_protect on the inner view), and an
    upload too large is answered with ``refuse(request, slug, message, 413)``. The decorated view is
    called as ``view(request, course_slug, slug, assignment, upload)``."""

    def decorate(view):
        @csrf_protect
        def receive(request, course_slug, slug):
            assignment = _assignment(request, slug)
            upload = request.FILES.get("file")
            if getattr(request, "upload_too_large", False):  # stopped while streaming in
                return refuse(request, slug, too_large_message(), 413)
            return view(request, course_slug, slug, assignment, upload)

        @csrf_exempt
        @course_role_required()
        @wraps(view)
        def post(request, course_slug, slug):
            if request.method != "POST":
                return HttpResponseNotAllowed(["POST"])
            if not install_limit(request):  # declared too large: the body is never parsed
                return refuse(request, slug, too_large_message(), 413)
            return receive(request, course_slug, slug)

        return post

    return decorate


def _refuse(request, slug, message, status=400):
    url = reverse("submissions:detail", args=[request.course.slug, slug])
    if status != 413:
        messages.error(request, message)
    else:
        # The body was not read: answer at once (the client may see the connection closed).
        response = render(request, "submissions/refused.html", {"message": message, "back": url}, status=413)
        response["Connection"] = "close"
        return response
    return redirect(url)


# --- the "Check" button of the assignment page (htmx; the check itself: precheck.check) ----------

def _check_refused(request, slug, message: str, status: int):
    if request.htmx:
        # htmx does not swap 4xx answers: the refusal is a 200 fragment shown in the check's slot,
        # with the real status in a header.
        response = HttpResponse(format_html('<p class="flag bad check-refused">{}</p>', message))
        response["X-Check-Status"] = str(status)
        return response
    messages.error(request, message)
    response = redirect(reverse("submissions:detail", args=[request.course.slug, slug]))
    if status == 413:
        response["Connection"] = "close"
    return response


@upload_view(_check_refused)
def check_view(request, course_slug, slug, assignment, upload):
    """POST a file: an htmx request gets the check's live card (it polls itself until graded);
    a plain form post is redirected to the assignment page. The size limit and CSRF: upload_view."""
    staff = request.membership.is_staff_role
    try:
        sub = check(assignment, request.user, upload, is_staff=staff)
    except UploadRejected as exc:
        return _check_refused(request, slug, exc.message, 429 if exc.code == "rate_limited" else 400)
    if not request.htmx:
        messages.success(request, f"Check received: {sub.original_name}. Only the visible tests run; it is not an attempt.")
        return redirect(reverse("submissions:detail", args=[course_slug, slug]) + f"#submission-{sub.pk}")
    sub.refresh_from_db()  # an eager or fast worker may have graded it already
    return render(request, "submissions/_submission.html", {
        "item": {"s": sub, "fb": services.feedback(sub, staff)}, "staff": staff, "course": request.course,
    })


@upload_view(_refuse)
def submit(request, course_slug, slug, assignment, upload):
    """Upload one file (an attempt, or a staff test run)."""
    try:
        sub = services.submit(assignment, request.user, upload, is_staff=request.membership.is_staff_role, via="web")
    except UploadRejected as exc:
        return _refuse(request, slug, exc.message)
    kind = "Test run" if sub.is_test_run else f"Attempt {sub.attempt}"
    messages.success(request, f"{kind} received: {sub.original_name}. It is queued for grading.")
    return redirect(reverse("submissions:detail", args=[course_slug, slug]) + f"#submission-{sub.pk}")


@course_role_required()
def submission_status(request, course_slug, pk):
    """One attempt's card; polled by htmx every second while queued/running."""
    sub = _submission(request, pk)
    staff = request.membership.is_staff_role
    template = "submissions/_submission.html"
    back = request.htmx.current_url_abs_path if request.htmx else None
    return render(request, template, {
        "item": {"s": sub, "fb": services.feedback(sub, staff)}, "staff": staff, "course": request.course, "back": back,
    })


@course_role_required()
def submission_file(request, course_slug, pk):
    sub = _submission(request, pk)
    path = services.blob_path(sub.blob)
    if not path.is_file():
        raise Http404("The file is missing.")
    return FileResponse(path.open("rb"), as_attachment=True, filename=sub.original_name, content_type="application/octet-stream")


@course_role_required()
def submission_artifact(request, course_slug, pk, index):
    sub = _submission(request, pk)
    artifacts = (sub.result or {}).get("artifacts") or []
    if index >= len(artifacts):
        raise Http404("No such artifact.")
    art = artifacts[index]
    if not isinstance(art, dict):
        raise Http404("No such artifact.")
    try:
        data = artifact_files.read(art)
    except ValueError:
        raise Http404("Damaged artifact.") from None
    name = Path(str(art.get("name") or f"artifact-{index}")).name
    return HttpResponse(
        data,
        content_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "X-Content-Type-Options": "nosniff"},
    )


@course_role_required()
def starter(request, course_slug, slug, kind):
    assignment = _assignment(request, slug)
    if kind not in ("py", "ipynb") or not assignment.pack_path:
        raise Http404("No such starter.")
    path = Path(assignment.pack_path) / f"starter.{kind}"
    if not path.is_file():
        raise Http404("This assignment has no such starter file.")
    return FileResponse(path.open("rb"), as_attachment=True, filename=f"{assignment.slug}.{kind}")


# --- staff ------------------------------------------------------------------------------------


@course_role_required(*STAFF_ROLES)
def staff_overview(request, course_slug, slug):
    assignment = _assignment(request, slug)
    stats = staff_statistics(assignment)
    # Not counted runs: the staff's test runs, and the students' checks (stored alike, is_test_run).
    staff_ids = Membership.objects.filter(course=request.course, role__in=STAFF_ROLES).values_list("user_id", flat=True)
    not_counted = Submission.objects.filter(assignment=assignment, is_test_run=True).select_related("student")
    return render(request, "submissions/staff_overview.html", {
        "assignment": assignment,
        **stats,
        "histogram": histogram_svg(stats["counted"], assignment.points, title=f"Counted scores for {assignment.title}"),
        "test_runs": not_counted.filter(student_id__in=staff_ids)[:10],
        "student_checks": not_counted.exclude(student_id__in=staff_ids)[:10],
        "is_instructor": request.membership.role == Role.INSTRUCTOR,
        "can_upload_packs": request.membership.role == Role.INSTRUCTOR and uploads_allowed(request.user),
    })


@course_role_required(*STAFF_ROLES)
def staff_student(request, course_slug, slug, user_id):
    assignment = _assignment(request, slug)
    member = get_object_or_404(Membership, course=request.course, user_id=user_id)
    subs = list(Submission.objects.filter(assignment=assignment, student=member.user).select_related("assignment"))
    return render(request, "submissions/staff_student.html", {
        "assignment": assignment,
        "member": member,
        "attempts": _attempt_context(request, assignment, subs),
        "extension": Extension.objects.filter(assignment=assignment, student=member.user).first(),
        "standing": services.standing(assignment, member.user, False),
        "staff": True,
    })


@require_POST
@course_role_required(*STAFF_ROLES)
def regrade(request, course_slug, slug):
    assignment = _assignment(request, slug)
    scope = request.POST.get("scope")
    subs = Submission.objects.filter(assignment=assignment)
    back = reverse("submissions:staff", args=[course_slug, slug])
    if scope == "submission":
        pk = request.POST.get("submission", "")
        subs = subs.filter(pk=int(pk) if pk.isdigit() else 0)
        if not subs.exists():
            raise Http404("No such submission in this assignment.")
        back = request.POST.get("next") or back
    elif scope == "student":
        raw = request.POST.get("student", "")
        if not raw.isdigit():
            messages.error(request, "Choose a student to regrade.")
            return redirect(back)
        user_id = int(raw)
        subs = subs.filter(student_id=user_id)
        back = reverse("submissions:staff_student", args=[course_slug, slug, int(user_id)])
    elif scope == "all":
        pass
    else:
        messages.error(request, "Choose what to regrade.")
        return redirect(back)
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        back = reverse("submissions:staff", args=[course_slug, slug])
    n = services.regrade(subs)
    messages.success(request, f"{n} submission(s) queued for regrading with pack {assignment.pack_hash[:12]}.")
    return redirect(back)


@require_POST
@course_role_required(Role.INSTRUCTOR)
def resync(request, course_slug, slug):
    assignment = _assignment(request, slug)
    if assignment.pack_source.startswith(UPLOAD_SOURCE):
        messages.info(request, f"This pack was uploaded as a zip ({assignment.pack_source}): upload a new version to change it.")
        return redirect("submissions:pack_uploads", course_slug)
    try:
        done = services.resync_pack(assignment, regrade_all=request.POST.get("regrade") == "all")
    except (PackInvalid, OSError, ValueError) as exc:
        messages.error(request, f"The pack at {services.pack_source(assignment)} could not be loaded: {exc}")
        return redirect("submissions:staff", course_slug, slug)
    new = done.assignment.pack_hash
    if not done.changed:
        messages.info(request, f"The pack is unchanged ({done.old_hash[:12]}).")
    else:
        messages.success(request, f"Pack updated: {done.old_hash[:12]} → {new[:12]}. Regrade to apply it to earlier submissions.")
    if done.regraded is not None:
        messages.success(request, f"{done.regraded} submission(s) queued for regrading.")
    return redirect("submissions:staff", course_slug, slug)


@course_role_required(*STAFF_ROLES)
def export(request, course_slug, slug):
    assignment = _assignment(request, slug)
    response = StreamingHttpResponse(export_stream(assignment), content_type="application/zip")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="{slugify(request.course.slug)}-{assignment.slug}-latest-{stamp}.zip"'
    return response


@course_role_required(Role.INSTRUCTOR)
def edit_settings(request, course_slug, slug):
    assignment = _assignment(request, slug)
    form = AssignmentSettingsForm(request.POST or None, instance=assignment)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Deadline and policy saved.")
        return redirect("submissions:staff", course_slug, slug)
    return render(request, "submissions/settings.html", {"assignment": assignment, "form": form})


@course_role_required(Role.INSTRUCTOR)
def extensions(request, course_slug, slug):
    assignment = _assignment(request, slug)
    if request.method == "POST" and request.POST.get("delete"):
        pk = request.POST["delete"]
        Extension.objects.filter(assignment=assignment, pk=int(pk) if pk.isdigit() else 0).delete()
        messages.success(request, "Extension removed.")
        return redirect("submissions:extensions", course_slug, slug)
    form = ExtensionForm(request.POST or None, course=request.course, assignment=assignment)
    if request.method == "POST" and form.is_valid():
        ext = form.save(request.user)
        messages.success(request, f"{ext.student.username} may submit until {timezone.localtime(ext.due_at):%d.%m.%Y %H:%M %Z}.")
        return redirect("submissions:extensions", course_slug, slug)
    return render(request, "submissions/extensions.html", {
        "assignment": assignment,
        "form": form,
        "extensions": Extension.objects.filter(assignment=assignment).select_related("student", "granted_by"),
    })


# --- personal API tokens ----------------------------------------------------------------------


NEW_TOKEN_SESSION_KEY = "api_new_token"


@login_required
def profile(request):
    # POST/redirect/GET: the new key travels once through the session, so a reload shows the page
    # again instead of sending the form (and creating a second token) again.
    new_key = request.session.pop(NEW_TOKEN_SESSION_KEY, None) if request.method == "GET" else None
    form = TokenForm(request.POST or None)
    if request.method == "POST":
        if request.POST.get("revoke"):
            pk = request.POST["revoke"]
            n = ApiToken.objects.filter(user=request.user, pk=int(pk) if pk.isdigit() else 0,
                                        revoked_at__isnull=True).update(
                revoked_at=timezone.now()
            )
            messages.success(request, "Token revoked." if n else "No such active token.")
            return redirect("api-profile")
        if form.is_valid():
            token, key = ApiToken.issue(request.user, form.cleaned_data["name"])
            request.session[NEW_TOKEN_SESSION_KEY] = key
            messages.success(request, "Token created. Copy it now: it is shown only once.")
            return redirect("api-profile")
    return render(request, "submissions/profile.html", {
        "form": form,
        "new_key": new_key,
        "tokens": ApiToken.objects.filter(user=request.user),
        "server": request.build_absolute_uri("/").rstrip("/"),
        "memberships": Membership.objects.filter(user=request.user).select_related("course"),
    })


# --- instructors upload packs ------------------------------------------------------------------


@course_role_required(Role.INSTRUCTOR)
def pack_uploads(request, course_slug):
    """Upload a pack zip (new assignment or a new version of one) and see recent uploads."""
    if not uploads_allowed(request.user):
        raise PermissionDenied("Pack uploads are reserved to site administrators on this server (PACK_UPLOADS).")
    form = PackUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST":
        if form.is_valid():
            try:
                row = receive(request.course, request.user, form.cleaned_data["file"], form.cleaned_data["regrade"])
            except PackRejected as exc:
                form.add_error("file", exc.message)
            else:
                messages.success(request, f"{row.original_name} received: checking the pack “{row.slug}”.")
                return redirect("submissions:pack_upload", course_slug, row.pk)
        status = 400
    else:
        status = 200

    return render(request, "submissions/packs.html", {
        "form": form,
        "uploads": PackUpload.objects.filter(course=request.course).select_related("uploaded_by", "assignment")[:20],
        "max_bytes": max_pack_bytes(),
    }, status=status)


@course_role_required(Role.INSTRUCTOR)
def pack_upload(request, course_slug, pk):
    """One upload's check, item by item; polled by htmx while it runs."""
    row = get_object_or_404(PackUpload.objects.select_related("assignment", "uploaded_by"), course=request.course, pk=pk)
    template = "submissions/_pack_check.html" if request.htmx else "submissions/pack_upload.html"
    return render(request, template, {"up": row})


# --- leaderboard -------------------------------------------------------------------------------------


@course_role_required()
def leaderboard(request, course_slug, slug):
    assignment = _assignment(request, slug)
    if not assignment.leaderboard_metric:
        raise Http404("This assignment has no leaderboard.")
    staff = request.membership.is_staff_role
    rows, columns = board(assignment, request.user, staff)
    return render(request, "submissions/leaderboard.html", {
        "assignment": assignment, "rows": rows, "columns": columns, "staff": staff,
        "mine": next((r for r in rows if r.is_me), None),
    })


# --- notebook feedback -------------------------------------------------------------------------------


def _artifact(request, pk, index):
    sub = _submission(request, pk)
    artifacts = (sub.result or {}).get("artifacts") or []
    if not 0 <= index < len(artifacts) or not isinstance(artifacts[index], dict):
        raise Http404("No such artifact.")
    art = artifacts[index]
    try:
        data = artifact_files.read(art)
    except ValueError:
        raise Http404("Damaged artifact.") from None
    return sub, art, data


@course_role_required()
def notebook_view(request, course_slug, pk, index):
    """The executed notebook of one submission, rendered in a sandboxed frame."""
    sub, art, _ = _artifact(request, pk, index)
    if not notebooks.is_notebook(art):
        raise Http404("This artifact is not a notebook.")
    return render(request, "submissions/notebook.html", {
        "s": sub, "index": index, "name": Path(str(art.get("name") or "notebook.ipynb")).name, "staff": request.membership.is_staff_role,
    })


@course_role_required()
def notebook_frame(request, course_slug, pk, index):
    """The sanitized notebook HTML as its own document, under a CSP that allows no script at all."""
    sub, art, data = _artifact(request, pk, index)
    if not notebooks.is_notebook(art):
        raise Http404("This artifact is not a notebook.")
    try:
        body = artifact_files.rendered(art, data)  # rendered once per content, then read back
    except notebooks.NotebookUnreadable as exc:
        from django.utils.html import escape

        body = f"<p>{escape(exc)}</p>"
    response = HttpResponse(notebooks.document(body, f"{sub.assignment.title}: attempt {sub.attempt}"),
                            content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = notebooks.FRAME_CSP
    response["X-Frame-Options"] = "SAMEORIGIN"
    response["Cache-Control"] = "private, no-store"
    response.xframe_options_exempt = True  # our own SAMEORIGIN header stays
    return response


@course_role_required()
def artifact_image(request, course_slug, pk, index):
    """An image the grader returned (the notebook's plot), shown inline: only real PNG/JPEG/GIF bytes."""
    _, art, data = _artifact(request, pk, index)
    ctype = notebooks.image_type(art, data)
    if ctype is None:
        raise Http404("This artifact is not an image.")
    return HttpResponse(data, content_type=ctype, headers={
        "X-Content-Type-Options": "nosniff", "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, max-age=3600",
    })
