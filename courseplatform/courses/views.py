"""Home, course dashboards, roster and enrolment, sessions and attendance."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from courseplatform.core import csvexport, hooks

from . import attendance as att
from . import enrolment
from .forms import (
    CourseSettingsForm, EnrolForm, MemberRoleForm, SessionAttendanceForm, SessionForm, WeeklySessionsForm,
)
from .models import STAFF_ROLES, AttendanceStatus, Course, LectureSession, Membership, Role
from .permissions import course_role_required

def _courses_for(user):
    if user.is_superuser:
        courses = list(Course.objects.all().order_by("title"))
        roles = {m.course_id: m for m in Membership.objects.filter(user=user)}
        return [(c, roles.get(c.id) and roles[c.id].get_role_display() or "Instructor (superuser)") for c in courses]
    return [
        (m.course, m.get_role_display())
        for m in Membership.objects.filter(user=user).select_related("course").order_by("course__title")
    ]


@login_required
def home(request):
    courses = _courses_for(request.user)
    if len(courses) == 1 and not request.user.is_superuser:
        return redirect("courses:dashboard", course_slug=courses[0][0].slug)
    return render(request, "courses/home.html", {"courses": courses})


# --- dashboard -------------------------------------------------------------------------------

@course_role_required()
def dashboard(request, course_slug):
    course, membership = request.course, request.membership
    template = {
        Role.INSTRUCTOR: "courses/dashboard_instructor.html",
        Role.TA: "courses/dashboard_ta.html",
    }.get(membership.role, "courses/dashboard_student.html")
    return render(request, template, {"panels": hooks.render_panels(request, course, membership)})


@course_role_required(Role.INSTRUCTOR)
def course_settings(request, course_slug):
    form = CourseSettingsForm(request.POST or None, instance=request.course)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Course settings saved.")
        return redirect("courses:dashboard", course_slug=course_slug)
    return render(request, "courses/course_settings.html", {"form": form})


# --- roster ----------------------------------------------------------------------------------

@course_role_required(*STAFF_ROLES)
def roster(request, course_slug):
    course = request.course
    members = list(
        Membership.objects.filter(course=course)
        .select_related("user")
        .order_by("role", "user__last_name", "user__first_name", "user__username")
    )
    absences = {row.user.id: row for row in att.summary(course)}
    by_role = {r.value: [m for m in members if m.role == r] for r in Role}
    return render(
        request,
        "courses/roster.html",
        {
            "members": members,
            "students": by_role[Role.STUDENT],
            "staff": by_role[Role.INSTRUCTOR] + by_role[Role.TA],
            "absences": absences,
            "role_choices": Role.choices,
            "can_manage": request.membership.role == Role.INSTRUCTOR,
        },
    )


@course_role_required(Role.INSTRUCTOR)
def enrol(request, course_slug):
    course = request.course
    form = EnrolForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data["file"].read()
        parsed = enrolment.parse(data)
        if not parsed.errors:
            enrolment.check_against_accounts(parsed)
        if parsed.errors:
            return render(
                request,
                "courses/enrol.html",
                {"form": EnrolForm(initial={"role": form.cleaned_data["role"]}), "errors": parsed.errors,
                 "filename": form.cleaned_data["file"].name},
                status=400,
            )
        entries = enrolment.enrol(course, parsed.rows, role=form.cleaned_data["role"], request=request)
        sent = enrolment.send_invites(course, entries) if form.cleaned_data["send_invites"] else 0
        created = sum(e.status == "created" for e in entries)
        added = sum(e.status in ("created", "enrolled") for e in entries)
        messages.success(
            request,
            f"Enrolled {added} people ({created} new accounts)"
            + (f"; e-mailed {sent} set-password links." if sent else "."),
        )
        # Keep the one-time links for the CSV download of this result (this session only).
        request.session[f"enrol-links-{course.slug}"] = [
            [e.user.username, e.user.get_full_name(), e.user.email, e.invite_url] for e in entries if e.invite_url
        ]
        return render(
            request,
            "courses/enrol_result.html",
            {"entries": entries, "ignored_columns": parsed.ignored_columns, "sent": sent},
        )
    return render(request, "courses/enrol.html", {"form": form})


@course_role_required(Role.INSTRUCTOR)
def enrol_links_csv(request, course_slug):
    rows = request.session.get(f"enrol-links-{request.course.slug}")
    if not rows:
        messages.error(request, "There are no set-password links to download: enrol people first.")
        return redirect("courses:enrol", course_slug=course_slug)
    return csvexport.csv_response(f"{course_slug}-set-password-links.csv",
                                  [["username", "name", "email", "set_password_link"], *rows])


@course_role_required(Role.INSTRUCTOR)
def enrol_template_csv(request, course_slug):
    return csvexport.csv_response("roster-template.csv", [
        ["username", "name", "email"], ["ada", "Ada Lovelace", "ada@example.edu"],
        ["alan", "Alan Turing", "alan@example.edu"],
    ])



def _member(request, member_id) -> Membership:
    return get_object_or_404(Membership.objects.select_related("user"), pk=member_id, course=request.course)


def _would_leave_no_instructor(member: Membership, new_role: str | None) -> bool:
    if member.role != Role.INSTRUCTOR or new_role == Role.INSTRUCTOR:
        return False
    return not Membership.objects.filter(course=member.course, role=Role.INSTRUCTOR).exclude(pk=member.pk).exists()


@require_POST
@course_role_required(Role.INSTRUCTOR)
def member_role(request, course_slug, member_id):
    member = _member(request, member_id)
    form = MemberRoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a valid role.")
    elif _would_leave_no_instructor(member, form.cleaned_data["role"]):
        messages.error(request, f"{member.user.username} is the course's only instructor; add another instructor first.")
    else:
        old = member.get_role_display()
        member.role = form.cleaned_data["role"]
        member.save(update_fields=["role"])
        messages.success(request, f"{member.user.username}: {old} \u2192 {member.get_role_display()}.")
    return redirect("courses:roster", course_slug=course_slug)


@course_role_required(Role.INSTRUCTOR)
def member_remove(request, course_slug, member_id):
    member = _member(request, member_id)
    if request.method == "POST":
        if _would_leave_no_instructor(member, None):
            messages.error(request, f"{member.user.username} is the course's only instructor and cannot be removed.")
        else:
            member.delete()
            messages.success(
                request,
                f"Removed {member.user.get_full_name() or member.user.username} from the course "
                "(the account and its past work are kept).",
            )
        return redirect("courses:roster", course_slug=course_slug)
    return render(request, "courses/member_remove.html", {"member": member})


@require_POST
@course_role_required(Role.INSTRUCTOR)
def member_invite(request, course_slug, member_id):
    """A fresh set-password link for a member (lost e-mail, expired link).

    The link is shown to the instructor only for an account nobody uses yet (no password, never
    logged in, in no other course, not a site admin); any other account belongs to its owner, and
    its link may only go to the owner's own address (else an instructor could take over another
    course's instructor or a superuser by enrolling them)."""
    member = _member(request, member_id)
    user = member.user
    url = enrolment.invite_url(request, user)
    in_use = (user.has_usable_password() or user.last_login is not None or user.is_staff or user.is_superuser
              or Membership.objects.filter(user=user).exclude(course=request.course).exists())
    if in_use and not (request.POST.get("email") and user.email):
        messages.error(request, f"{user.username} already uses this account: a set-password link can only be "
                                "e-mailed to them" + (" (use the e-mail button)." if user.email else
                                                     "; they have no e-mail address here, so they should use "
                                                     "“Forgot password?” on the login page."))
        return redirect("courses:roster", course_slug=course_slug)
    if request.POST.get("email") and member.user.email:
        enrolment.send_invites(request.course, [enrolment.Enrolled(member.user, "enrolled", member.role, url)])
        messages.success(request, f"E-mailed a set-password link to {member.user.email}.")
        return redirect("courses:roster", course_slug=course_slug)
    return render(request, "courses/member_invite.html", {"member": member, "url": url})


# --- sessions and attendance -----------------------------------------------------------------

@course_role_required(*STAFF_ROLES)
def sessions(request, course_slug):
    course = request.course
    today = timezone.localdate()
    rows = list(att.sessions_with_counts(course))
    n_students = Membership.objects.filter(course=course).students().count()
    return render(
        request,
        "courses/sessions.html",
        {"sessions": rows, "today": today, "n_students": n_students,
         "can_manage": request.membership.role == Role.INSTRUCTOR},
    )


@course_role_required(Role.INSTRUCTOR)
def session_edit(request, course_slug, session_id=None):
    course = request.course
    instance = get_object_or_404(LectureSession, pk=session_id, course=course) if session_id else None
    form = SessionForm(request.POST or None, instance=instance, course=course)
    if request.method == "POST" and form.is_valid():
        session = form.save()
        messages.success(request, f"Saved session {session}.")
        return redirect("courses:sessions", course_slug=course_slug)
    return render(request, "courses/session_form.html", {"form": form, "session": instance})


@course_role_required(Role.INSTRUCTOR)
def session_delete(request, course_slug, session_id):
    session = get_object_or_404(LectureSession, pk=session_id, course=request.course)
    if request.method == "POST":
        session.delete()
        messages.success(request, f"Deleted session {session} and its attendance.")
        return redirect("courses:sessions", course_slug=course_slug)
    return render(request, "courses/session_delete.html", {"session": session, "n_marked": session.attendance.count()})


@course_role_required(Role.INSTRUCTOR)
def sessions_weekly(request, course_slug):
    course = request.course
    form = WeeklySessionsForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        title = form.cleaned_data["title"].strip()
        created = skipped = 0
        with transaction.atomic():
            start = LectureSession.objects.filter(course=course, title__startswith=title + " ").count()
            for n, day in enumerate(form.dates(), start=start + 1):
                if LectureSession.objects.filter(course=course, date=day, title__startswith=title).exists():
                    skipped += 1
                    continue
                LectureSession.objects.create(
                    course=course, date=day, title=f"{title} {n}", starts_at=form.cleaned_data["starts_at"]
                )
                created += 1
        messages.success(
            request,
            f"Created {created} weekly sessions" + (f"; {skipped} dates already had one." if skipped else "."),
        )
        return redirect("courses:sessions", course_slug=course_slug)
    return render(request, "courses/sessions_weekly.html", {"form": form})


def _session_in_future(session, now=None) -> bool:
    """The session has not started yet (its day is ahead, or it is today and its start time is)."""
    now = timezone.localtime(now)
    if session.date != now.date():
        return session.date > now.date()
    return session.starts_at is not None and session.starts_at > now.time()


@course_role_required(*STAFF_ROLES)
def session_attendance(request, course_slug, session_id):
    """Mark every student of one session on one page, one submit."""
    course = request.course
    session = get_object_or_404(LectureSession, pk=session_id, course=course)
    students = [m.user for m in att.student_memberships(course)]
    current = {a.user_id: a.status for a in session.attendance.all()}
    errors = []
    future = _session_in_future(session)
    if request.method == "POST":
        form = SessionAttendanceForm(students, current, request.POST)
        valid = form.is_valid()
        if valid and future and request.POST.get("confirm_future") != "1":
            valid = False  # marks for a session that has not taken place: only when confirmed
            form.future_refused = True
        chosen = form.marks()
        if valid:
            counts = att.mark_session(session, students, chosen, request.user)
            messages.success(
                request,
                f"Attendance saved for {session}: {counts['present']} present, {counts['absent']} absent, "
                f"{counts['excused']} excused.",
            )
            return redirect("courses:sessions", course_slug=course_slug)
        errors = form.error_lines()
        if getattr(form, "future_refused", False):
            errors.append(f"Not saved: {session} has not taken place yet. Tick the confirmation to mark it anyway.")
        current.update(chosen)
    summary = {row.user.id: row for row in att.summary(course, users=students)}
    rows = [{"user": u, "status": current.get(u.id, ""), "summary": summary[u.id]} for u in students]
    return render(
        request,
        "courses/session_attendance.html",
        {"session": session, "rows": rows, "statuses": AttendanceStatus.choices, "errors": errors, "future": future},
        status=400 if errors else 200,
    )


@course_role_required()
def attendance_overview(request, course_slug):
    """Staff: every student's absences (a matrix). Students: their own record."""
    if request.membership.role == Role.STUDENT:
        return redirect("courses:student_attendance", course_slug=course_slug, user_id=request.user.id)
    course = request.course
    sessions_list = list(LectureSession.objects.filter(course=course))
    rows = att.summary(course, with_sessions=True)
    for row in rows:
        row.cells = [row.by_session.get(s.id, "") for s in sessions_list]
    if request.GET.get("format") == "csv":
        table = [["username", "name", "present", "absent", "excused", "flagged"]
                 + [f"{s.date:%Y-%m-%d} {s.title}" for s in sessions_list]]
        table += [[row.user.username, row.user.get_full_name(), row.present, row.absent, row.excused,
                   "yes" if row.flagged else ""] + row.cells for row in rows]
        return csvexport.csv_response(f"{course.slug}-attendance.csv", table)
    return render(request, "courses/attendance.html", {"sessions": sessions_list, "rows": rows})


@course_role_required()
def student_attendance(request, course_slug, user_id):
    course = request.course
    if request.membership.role == Role.STUDENT and request.user.id != user_id:
        raise Http404("No such student.")
    membership = Membership.objects.filter(course=course, user_id=user_id).students().select_related("user").first()
    if membership is None:
        raise Http404("No such student in this course.")
    row = att.summary(course, users=[membership.user], with_sessions=True)[0]
    records = [
        {"session": s, "status": row.by_session.get(s.id, "")}
        for s in LectureSession.objects.filter(course=course)
    ]
    return render(
        request,
        "courses/student_attendance.html",
        {"student": membership.user, "row": row, "records": records, "today": timezone.localdate(),
         "is_self": request.user.id == user_id},
    )
