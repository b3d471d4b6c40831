"""Project pages: a student's group and deliveries; staff's groups, matrix, milestones and grading."""
from __future__ import annotations

import mimetypes

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from courseplatform.courses.models import ANY_ROLE, STAFF_ROLES, Role
from courseplatform.courses.permissions import course_role_required

from . import inline_view, litreview, services
from .forms import DeliveryForm, GroupNameForm, JoinForm, MilestoneForm, MoveForm, RubricFormSet, SettingsForm
from .models import (
    Delivery,
    DeliveryVersion,
    Group,
    GroupEvent,
    Milestone,
    MilestoneGrade,
    ProjectSettings,
)
from .services import ProjectError


def _index_url(course_slug):
    return reverse("projects:index", args=[course_slug])


def _text(request, key: str, limit: int | None = None) -> str:
    """A text field of the POST without NUL characters (PostgreSQL refuses them; no browser sends them)."""
    value = request.POST.get(key, "").replace("\x00", "")
    return value[:limit] if limit else value


def _id(value) -> int:
    """A posted object id; anything but digits matches nothing (404), never a crash."""
    value = str(value or "").strip()
    return int(value) if value.isdigit() and len(value) < 19 else 0


def _refuse(request, message: str, status: int = 400, template: str = "projects/refused.html"):
    return render(request, template, {"message": message}, status=status)


# --- index ---------------------------------------------------------------------------------


@course_role_required(*ANY_ROLE)
def index(request, course_slug):
    if request.membership.is_staff_role:
        return staff_matrix(request, course_slug)
    course = request.course
    cfg = ProjectSettings.for_course(course)
    group = services.group_of(course, request.user)
    now = timezone.now()
    rows = []
    for m in Milestone.objects.filter(course=course).prefetch_related("criteria"):
        st = services.state_for_group(m, group, now)
        if st.grade is not None:
            st.score = st.grade.score_for(request.user.id)  # an individual score replaces the group's
        rows.append((m, st))
    return render(request, "projects/student_index.html", {
        "cfg": cfg, "locked": cfg.is_locked(now), "group": group,
        "members": group.member_users() if group else [],
        "rows": rows, "create_form": GroupNameForm(), "join_form": JoinForm(),
        "max_bytes": services.max_delivery_bytes(),
    })


def staff_matrix(request, course_slug):
    course = request.course
    milestones, rows = services.matrix(course)
    summary = []
    for i, m in enumerate(milestones):
        counts = {"graded": 0, "on_time": 0, "late": 0, "missing": 0, "open": 0, "none": 0}
        for _, cells in rows:
            counts[cells[i].state] += 1
        summary.append((m, counts))
    cfg = ProjectSettings.for_course(course)
    return render(request, "projects/matrix.html", {
        "milestones": milestones, "rows": rows, "summary": summary, "cfg": cfg,
        "locked": cfg.is_locked(), "without_group": services.students_without_group(course),
    })


# --- student group actions -------------------------------------------------------------------


@require_POST
@course_role_required(Role.STUDENT)
def group_create(request, course_slug):
    form = GroupNameForm(request.POST)
    try:
        if not form.is_valid():
            problems = " ".join(str(m) for msgs in form.errors.values() for m in msgs)
            raise ProjectError(f"Give the group a name (at most 80 characters). {problems}".strip())
        group = services.create_group(request.course, request.user, form.cleaned_data["name"])
    except ProjectError as e:
        messages.error(request, str(e))
    else:
        messages.success(request, f"Group “{group.name}” created. Share the join code {group.join_code} "
                                  "with your team mates.")
    return redirect(_index_url(course_slug))


@require_POST
@course_role_required(Role.STUDENT)
def group_join(request, course_slug):
    try:
        group = services.join_group(request.course, request.user, request.POST.get("code", ""))
    except ProjectError as e:
        messages.error(request, str(e))
    else:
        messages.success(request, f"You joined “{group.name}”.")
    return redirect(_index_url(course_slug))


@require_POST
@course_role_required(Role.STUDENT)
def group_leave(request, course_slug):
    try:
        group = services.leave_group(request.course, request.user)
    except ProjectError as e:
        messages.error(request, str(e))
    else:
        messages.success(request, f"You left “{group.name}”.")
    return redirect(_index_url(course_slug))


# --- staff group management ------------------------------------------------------------------


@course_role_required(*STAFF_ROLES)
def groups(request, course_slug):
    course = request.course
    cfg = ProjectSettings.for_course(course)
    settings_form = SettingsForm(instance=cfg)
    if request.method == "POST":
        if request.membership.role != Role.INSTRUCTOR:
            raise PermissionDenied("Only instructors change group settings.")
        settings_form = SettingsForm(request.POST, instance=cfg)
        if settings_form.is_valid():
            with transaction.atomic():
                settings_form.save()
                services.log(course, GroupEvent.Action.SETTINGS, request.user, detail=(
                    f"max size {cfg.max_group_size}, students form groups: "
                    f"{'yes' if cfg.students_form_groups else 'no'}, lock at: "
                    f"{services.local(cfg.lock_at) if cfg.lock_at else 'none'}"))
            messages.success(request, "Group settings saved.")
            return redirect(reverse("projects:groups", args=[course_slug]))
        messages.error(request, "Check the group settings below.")
    all_groups = Group.objects.filter(course=course).prefetch_related("members__user")
    events = GroupEvent.objects.filter(course=course).select_related("actor", "subject")[:200]
    return render(request, "projects/groups.html", {
        "cfg": cfg, "locked": cfg.is_locked(), "settings_form": settings_form, "groups": all_groups,
        "without_group": services.students_without_group(course), "events": events,
        "create_form": GroupNameForm(), "move_form": MoveForm(course),
    })


@require_POST
@course_role_required(Role.INSTRUCTOR)
def groups_action(request, course_slug):
    """One endpoint for the instructor's actions on the groups page: create, move, lock, unlock,
    rename, delete, new code (README, "Roles and people": TAs see the groups, instructors change them)."""
    course = request.course
    action = request.POST.get("action", "")
    try:
        if action == "create":
            group = services.create_group(course, request.user, request.POST.get("name", ""), by_staff=True)
            messages.success(request, f"Group “{group.name}” created (join code {group.join_code}).")
        elif action == "move":
            form = MoveForm(course, request.POST)
            if not form.is_valid():
                raise ProjectError("Pick a student of this course and a group of this course.")
            target = form.cleaned_data["group"]
            services.move_student(course, request.user, form.cleaned_data["student"], target)
            messages.success(request, f"{form.cleaned_data['student'].username} moved to "
                                      f"{'“' + target.name + '”' if target else 'no group'}.")
        elif action in ("lock", "unlock"):
            services.set_locked(course, request.user, action == "lock")
            messages.success(request, "Groups locked." if action == "lock" else "Groups unlocked.")
        elif action in ("rename", "delete", "new_code"):
            group = get_object_or_404(Group, course=course, pk=_id(request.POST.get("group")))
            if action == "rename":
                services.rename_group(course, request.user, group, request.POST.get("name", ""))
                messages.success(request, f"Renamed to “{group.name}”.")
            elif action == "delete":
                name = group.name
                services.delete_group(course, request.user, group)
                messages.success(request, f"Group “{name}” deleted.")
            else:
                code = services.new_code(course, request.user, group)
                messages.success(request, f"New join code for “{group.name}”: {code}.")
        else:
            raise ProjectError("Unknown action.")
    except ProjectError as e:
        messages.error(request, str(e))
    return redirect(reverse("projects:groups", args=[course_slug]))


# --- milestones ------------------------------------------------------------------------------


def _milestone(request, pk) -> Milestone:
    return get_object_or_404(Milestone.objects.prefetch_related("criteria"), course=request.course, pk=pk)


@course_role_required(*ANY_ROLE)
def milestone_detail(request, course_slug, pk):
    milestone = _milestone(request, pk)
    if not request.membership.is_staff_role:
        group = services.group_of(request.course, request.user)
        if group is None:
            return render(request, "projects/milestone_student.html", {
                "milestone": milestone, "group": None, "state": services.state_for_group(milestone, None)})
        return redirect(reverse("projects:delivery", args=[course_slug, milestone.pk, group.pk]))
    milestones, rows = services.matrix(request.course)
    i = [m.pk for m in milestones].index(milestone.pk)
    return render(request, "projects/milestone_staff.html", {
        "milestone": milestone, "rows": [(g, cells[i]) for g, cells in rows],
    })


@course_role_required(Role.INSTRUCTOR)
def milestone_edit(request, course_slug, pk=None):
    course = request.course
    milestone = _milestone(request, pk) if pk else Milestone(course=course)
    form = MilestoneForm(course, request.POST or None, instance=milestone)
    formset = RubricFormSet(request.POST or None, instance=milestone, prefix="rubric")
    if request.method == "POST" and form.is_valid() and formset.is_valid():
        with transaction.atomic():
            milestone = form.save(commit=False)
            milestone.course = course
            milestone.save()
            formset.instance = milestone
            formset.save()
        messages.success(request, f"Milestone “{milestone.title}” saved.")
        return redirect(reverse("projects:milestone", args=[course_slug, milestone.pk]))
    return render(request, "projects/milestone_edit.html", {"milestone": milestone, "form": form, "formset": formset})


# --- deliveries ------------------------------------------------------------------------------


def _delivery_context(request, milestone: Milestone, group: Group):
    """Resolve access: staff see every group; a student only their own group (404 otherwise)."""
    is_staff = request.membership.is_staff_role
    if not is_staff and not group.has_member(request.user):
        raise Http404("No such delivery.")
    delivery = Delivery.objects.filter(milestone=milestone, group=group).first()
    versions = list(delivery.versions.select_related("submitted_by").order_by("-number")) if delivery else []
    grade = (MilestoneGrade.objects.filter(milestone=milestone, group=group)
             .prefetch_related("criterion_scores__criterion", "overrides__user").select_related("graded_by").first())
    state = services.cell_state(milestone, delivery, grade, versions[0] if versions else None, len(versions))
    now = timezone.now()
    may_deliver = (not is_staff and milestone.deliverable != "none" and grade is None
                   and (now <= milestone.due or milestone.allow_late))
    return {
        "milestone": milestone, "group": group, "members": group.member_users(), "delivery": delivery,
        "versions": versions, "grade": grade, "state": state, "is_staff": is_staff, "may_deliver": may_deliver,
        "past_due": now > milestone.due, "max_bytes": services.max_delivery_bytes(),
        "template_text": litreview.TEMPLATE,
    }


def _group_in_course(request, group_id) -> Group:
    return get_object_or_404(Group, course=request.course, pk=group_id)


@course_role_required(*ANY_ROLE)
def delivery(request, course_slug, pk, group_id):
    milestone = _milestone(request, pk)
    group = _group_in_course(request, group_id)
    if request.method == "POST":
        return _deliver(request, course_slug, milestone, group)
    ctx = _delivery_context(request, milestone, group)
    ctx["form"] = DeliveryForm(initial={"repo_url": ctx["versions"][0].repo_url if ctx["versions"] else ""})
    if ctx["is_staff"]:
        g = ctx["grade"]
        ctx["grade_rows"] = _grade_rows(milestone, g)
        ctx["override_rows"] = _override_rows(ctx["members"], g)
        ctx["score_value"] = _fmt(g.score) if g else ""
        ctx["feedback_value"] = g.feedback if g else ""
    return render(request, "projects/delivery.html", ctx)


def _deliver(request, course_slug, milestone, group):
    if request.membership.is_staff_role or not group.has_member(request.user):
        return _refuse(request, "You are not a member of this group: you can only deliver for your own group.",
                       status=403)
    try:
        version = services.deliver(
            milestone, group, request.user, repo_url=request.POST.get("repo_url", ""),
            upload=request.FILES.get("file"), text=request.POST.get("text", ""),
        )
    except ProjectError as e:
        ctx = _delivery_context(request, milestone, group)
        ctx["form"] = DeliveryForm(initial={"repo_url": request.POST.get("repo_url", ""),
                                            "text": request.POST.get("text", "")})
        ctx["error"] = str(e)
        if milestone.is_literature_review:
            text = request.POST.get("text", "")
            upload = request.FILES.get("file")
            if upload is not None and not text.strip():
                try:
                    upload.seek(0)
                    text = upload.read(services.max_delivery_bytes() + 1).decode("utf-8")
                except (UnicodeDecodeError, ValueError):
                    text = ""
            ctx["report"] = services.check_structure(milestone, text)
        return render(request, "projects/delivery.html", ctx, status=400)
    msg = f"Version {version.number} delivered"
    msg += " (late)." if version.is_late else "."
    messages.success(request, msg)
    return redirect(reverse("projects:delivery", args=[course_slug, milestone.pk, group.pk]))


@require_POST
@course_role_required(*ANY_ROLE)
def delivery_check(request, course_slug, pk, group_id):
    """htmx: check the literature-review structure of the text or file in the form, before submitting."""
    milestone = _milestone(request, pk)
    group = _group_in_course(request, group_id)
    if not request.membership.is_staff_role and not group.has_member(request.user):
        raise Http404("No such delivery.")
    text = request.POST.get("text", "")
    problem = None
    upload = request.FILES.get("file")
    if not text.strip() and upload is not None:
        try:
            text = services.review_text(milestone, "", services.clean_file(milestone, upload)) or ""
        except ProjectError as e:
            problem = str(e)
    report = services.check_structure(milestone, text) if milestone.is_literature_review else None
    url_problem = None
    if milestone.wants_url and request.POST.get("repo_url", "").strip():
        try:
            services.clean_repo_url(request.POST["repo_url"])
        except ProjectError as e:
            url_problem = str(e)
    return render(request, "projects/_check.html", {
        "milestone": milestone, "report": report, "problem": problem, "url_problem": url_problem,
        "empty": not text.strip() and upload is None,
    })


def _version(request, version_id) -> DeliveryVersion:
    """A delivery version of this course: staff see every group's, a student only their group's (404)."""
    version = get_object_or_404(
        DeliveryVersion.objects.select_related("delivery__group", "delivery__milestone"),
        pk=version_id, delivery__milestone__course=request.course,
    )
    if not request.membership.is_staff_role and not version.delivery.group.has_member(request.user):
        raise Http404("No such file.")
    return version


@require_GET
@course_role_required(*ANY_ROLE)
def version_view(request, course_slug, version_id):
    """A delivered file shown in the page: text, Markdown and notebooks rendered safely in a sandboxed
    frame, PDFs in the browser's viewer, images inline; anything else can only be downloaded."""
    version = _version(request, version_id)
    if not version.file:
        raise Http404("This version has no file.")
    kind = inline_view.kind_of(version.filename)
    return render(request, "projects/version_view.html", {
        "version": version, "kind": kind, "milestone": version.delivery.milestone, "group": version.delivery.group,
        "is_staff": request.membership.is_staff_role,
    })


@require_GET
@course_role_required(*ANY_ROLE)
def version_inline(request, course_slug, version_id):
    """The content of a delivered file for the view page's frame, under a CSP that runs no script."""
    version = _version(request, version_id)
    if not version.file:
        raise Http404("This version has no file.")
    try:
        with version.file.open("rb") as fh:
            data = fh.read(inline_view.MAX_INLINE_BYTES + 1)
    except FileNotFoundError:
        raise Http404("The file is missing from storage.")
    response = inline_view.response_for(version.filename, data, title=f"{version.delivery} v{version.number}")
    if response is None:
        raise Http404("This file cannot be shown in the page; download it instead.")
    return response


@require_GET
@course_role_required(*ANY_ROLE)
def version_download(request, course_slug, version_id):
    version = _version(request, version_id)
    if not version.file:
        raise Http404("This version has no file.")
    try:
        fh = version.file.open("rb")
    except FileNotFoundError:
        raise Http404("The file is missing from storage.")
    ctype = mimetypes.guess_type(version.filename)[0] or "application/octet-stream"
    if ctype.startswith("text/"):
        ctype = "text/plain; charset=utf-8"  # never rendered as HTML by the browser
    response = FileResponse(fh, as_attachment=True, filename=version.filename, content_type=ctype)
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@require_GET
@course_role_required(*ANY_ROLE)
def review_template(request, course_slug):
    response = HttpResponse(litreview.TEMPLATE, content_type="text/markdown; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="literature-review-template.md"'
    return response


# --- grading ---------------------------------------------------------------------------------


def _fmt(value) -> str:
    return "" if value is None else f"{float(value):g}"


def _grade_rows(milestone, grade, posted=None):
    """[(criterion, points shown in the form, comment)]: what was posted, else the stored score."""
    existing = {cs.criterion_id: cs for cs in grade.criterion_scores.all()} if grade else {}
    rows = []
    for c in milestone.criteria.all():
        cs = existing.get(c.pk)
        if posted is not None:
            rows.append((c, posted.get(f"criterion_{c.pk}", ""), posted.get(f"comment_{c.pk}", "")))
        else:
            rows.append((c, _fmt(cs.points) if cs else "", cs.comment if cs else ""))
    return rows


def _override_rows(members, grade, posted=None):
    existing = {o.user_id: o for o in grade.overrides.all()} if grade else {}
    rows = []
    for u in members:
        o = existing.get(u.id)
        if posted is not None:
            rows.append((u, posted.get(f"override_{u.id}", ""), posted.get(f"reason_{u.id}", "")))
        else:
            rows.append((u, _fmt(o.score) if o else "", o.reason if o else ""))
    return rows


@require_POST
@course_role_required(*STAFF_ROLES)
def grade(request, course_slug, pk, group_id):
    milestone = _milestone(request, pk)
    group = _group_in_course(request, group_id)
    criteria = list(milestone.criteria.all())
    maximum = milestone.max_points
    try:
        scores = {}
        if criteria:
            for c in criteria:
                raw = request.POST.get(f"criterion_{c.pk}", "")
                if raw.strip() == "":
                    raise ProjectError(f"{c.title}: enter the points (0 to {float(c.points):g}).")
                scores[c] = (services.to_decimal(raw, c.title, float(c.points)),
                             _text(request, f"comment_{c.pk}").strip()[:500])
            total = sum(v for v, _ in scores.values())
        else:
            total = services.to_decimal(request.POST.get("score", ""), "Score", maximum)
        overrides = {}
        for u in group.member_users():
            raw = request.POST.get(f"override_{u.id}", "").strip()
            if raw:
                reason = _text(request, f"reason_{u.id}").strip()
                if not reason:
                    raise ProjectError(f"Give a reason for {u.username}'s individual score.")
                overrides[u] = (services.to_decimal(raw, f"{u.username}'s individual score", maximum), reason[:300])
        feedback = _text(request, "feedback")
    except ProjectError as e:
        ctx = _delivery_context(request, milestone, group)
        ctx.update(form=DeliveryForm(), grade_error=str(e),
                   score_value=request.POST.get("score", ""), feedback_value=request.POST.get("feedback", ""),
                   grade_rows=_grade_rows(milestone, ctx["grade"], request.POST),
                   override_rows=_override_rows(ctx["members"], ctx["grade"], request.POST))
        return render(request, "projects/delivery.html", ctx, status=400)
    services.grade_delivery(milestone, group, request.user, total=total, feedback=feedback, scores=scores,
                            overrides=overrides)
    messages.success(request, f"Graded “{group.name}”: {float(total):g}/{maximum:g}.")
    return redirect(reverse("projects:delivery", args=[course_slug, milestone.pk, group.pk]))


@require_POST
@course_role_required(*STAFF_ROLES)
def grade_delete(request, course_slug, pk, group_id):
    milestone = _milestone(request, pk)
    group = _group_in_course(request, group_id)
    if services.remove_grade(milestone, group):
        messages.success(request, "Grade removed: the group may deliver again (until the deadline).")
    return redirect(reverse("projects:delivery", args=[course_slug, milestone.pk, group.pk]))
