"""Live quiz pages. Staff: the course's live page (start, settings), control, projector, QR code,
results and CSV. Students: the course's live page, the join form, the phone page, answers.
Answers and the instructor's steps are plain POSTs here: the fallback of the pages, which send them
on their sockets (consumers.py), and the forms without JavaScript. The pages learn what happened by push."""
from __future__ import annotations

import json

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from courseplatform.core import csvexport
from courseplatform.courses.models import Role
from courseplatform.courses.permissions import course_role_required

from . import qr, services
from .forms import SettingsForm, StartForm
from .models import LiveSession, LiveSettings, Participant, Phase

STAFF = (Role.INSTRUCTOR, Role.TA)


def _live(request, live_id) -> LiveSession:
    return get_object_or_404(LiveSession.objects.select_related("course", "lecture"), pk=live_id, course=request.course)


def _wants_json(request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _push_context(request, live, as_: str) -> dict:
    return {"live": live, "push_base": settings.LIVE_PUSH_URL, "push_as": as_,
            "ws_path": f"/ws/live/{live.pk}/?as={as_}"}


def _join_url(request, live) -> str:
    return request.build_absolute_uri(reverse("live-join") + f"?code={live.code}")


# --------------------------------------------------------------------------- the course's live page
@require_GET
@course_role_required()
def index(request, course_slug):
    course = request.course
    if request.membership.role == Role.STUDENT:
        running = LiveSession.objects.filter(course=course).exclude(phase=Phase.ENDED).select_related("lecture")
        joined = set(Participant.objects.filter(user=request.user, live__in=running).values_list("live_id", flat=True))
        return render(request, "live/index_student.html", {"running": running, "joined": joined})
    sessions = LiveSession.objects.filter(course=course).select_related("lecture")
    current = LiveSettings.objects.filter(course=course).first() or LiveSettings(course=course)
    return render(request, "live/index_staff.html", {
        "sessions": sessions, "form": StartForm(course, initial={"mark_attendance": True}),
        "settings_form": SettingsForm(instance=current)})


@require_POST
@course_role_required(*STAFF)
def start(request, course_slug):
    course = request.course
    form = StartForm(course, request.POST)
    if not form.is_valid():
        sessions = LiveSession.objects.filter(course=course).select_related("lecture")
        current = LiveSettings.objects.filter(course=course).first() or LiveSettings(course=course)
        return render(request, "live/index_staff.html", {"sessions": sessions, "form": form,
                                                         "settings_form": SettingsForm(instance=current)}, status=400)
    quiz = form.cleaned_data.get("quiz")
    lecture = form.cleaned_data["lecture"]
    title = form.cleaned_data.get("title") or (quiz.title if quiz else f"Live quiz, {lecture.title}")
    try:
        live = services.start(course, lecture, form.chosen_questions(), title=title, user=request.user, quiz=quiz,
                              mark_attendance=form.cleaned_data.get("mark_attendance", False))
    except services.LiveError as exc:
        messages.error(request, str(exc))
        return redirect("live:index", course_slug=course_slug)
    return redirect("live:control", course_slug=course_slug, live_id=live.pk)


@require_POST
@course_role_required(Role.INSTRUCTOR)
def live_settings(request, course_slug):
    current = LiveSettings.objects.filter(course=request.course).first() or LiveSettings(course=request.course)
    form = SettingsForm(request.POST, instance=current)
    if form.is_valid():
        form.save()
        messages.success(request, f"Live quizzes in the gradebook: {current.get_gradebook_display()}.")
    else:
        messages.error(request, "Choose how live quizzes count.")
    return redirect("live:index", course_slug=course_slug)


# --------------------------------------------------------------------------- staff screens
@require_GET
@course_role_required(*STAFF)
def control(request, course_slug, live_id):
    live = _live(request, live_id)
    return render(request, "live/control.html", {**_push_context(request, live, "screen"),
                                                 "questions": live.questions.all(), "join_url": _join_url(request, live)})


@require_POST
@course_role_required(*STAFF)
def action(request, course_slug, live_id):
    live = _live(request, live_id)

    def number(name):
        try:
            return int(request.POST.get(name, ""))
        except ValueError:
            return None

    try:
        live = services.control(live.pk, request.POST.get("action", ""), version=number("version"),
                                seconds=number("seconds"))
        ok, status, message = True, 200, "Done."
    except services.LiveError as exc:
        ok, status, message = False, exc.status, str(exc)
        live.refresh_from_db()
    if _wants_json(request):
        return JsonResponse({"ok": ok, "message": message, "state": services.staff_state(live)}, status=status)
    if not ok:
        messages.error(request, message)
    return redirect("live:control", course_slug=course_slug, live_id=live.pk)


@require_GET
@course_role_required(*STAFF)
def projector(request, course_slug, live_id):
    live = _live(request, live_id)
    return render(request, "live/projector.html", {**_push_context(request, live, "screen"),
                                                   "join_url": _join_url(request, live)})


@require_GET
@course_role_required(*STAFF)
def qr_code(request, course_slug, live_id):
    live = _live(request, live_id)
    response = HttpResponse(qr.svg(_join_url(request, live)), content_type="image/svg+xml")
    response["Cache-Control"] = "private, max-age=3600"
    return response


@require_GET
@course_role_required(*STAFF)
def results(request, course_slug, live_id):
    live = _live(request, live_id)
    if request.GET.get("format") == "csv":
        return csvexport.csv_response(f"{request.course.slug}-live-{live.pk}.csv", services.export_rows(live))
    return render(request, "live/results.html", {"live": live, "questions": services.results(live),
                                                 "joined": live.participants.count()})


# --------------------------------------------------------------------------- students
@login_required
def join(request):
    """Type (or scan) the code from the projector. Looked up only among the user's own courses."""
    code = request.POST.get("code") if request.method == "POST" else request.GET.get("code", "")
    error, status = "", 200
    if request.method == "POST":
        try:
            live = services.join(request.user, code or "")
        except services.LiveError as exc:
            error, status = str(exc), exc.status
        else:
            return redirect("live:phone", course_slug=live.course.slug, live_id=live.pk)
    return render(request, "live/join.html", {"code": (code or "")[:12], "error": error}, status=status)


@course_role_required(Role.STUDENT)
@require_GET
def phone(request, course_slug, live_id):
    live = _live(request, live_id)
    if not Participant.objects.filter(live=live, user=request.user).exists():
        messages.info(request, "Type the code shown on the screen to join.")
        return redirect(reverse("live-join"))
    return render(request, "live/phone.html", {**_push_context(request, live, "phone"),
                                               "state_json": json.dumps(services.personal_state(live, request.user))})


@course_role_required(Role.STUDENT)
@require_GET
def me(request, course_slug, live_id):
    live = _live(request, live_id)
    return JsonResponse(services.personal_state(live, request.user))


@require_POST
@course_role_required(Role.STUDENT)
def answer(request, course_slug, live_id):
    """One answer: stored in the database before the reply says "received"."""
    live = _live(request, live_id)
    name = {"choice": request.POST.getlist("choice"), "value": request.POST.getlist("value"),
            "text": request.POST.getlist("text")}
    try:
        row, created = services.answer(live.pk, request.user, request.POST.get("question"), name)
    except services.LiveError as exc:
        if _wants_json(request):
            live.refresh_from_db()
            return JsonResponse({"ok": False, "message": str(exc), "state": services.personal_state(live, request.user)},
                                status=exc.status)
        messages.error(request, str(exc))
        return redirect("live:phone", course_slug=course_slug, live_id=live.pk)
    message = "Answer received." if created else "Answer received (it had already arrived)."
    if _wants_json(request):
        return JsonResponse({"ok": True, "message": message, "question": row.question_id, "created": created,
                             "text": services.answer_text(row)})
    messages.success(request, message)
    return redirect("live:phone", course_slug=course_slug, live_id=live.pk)
