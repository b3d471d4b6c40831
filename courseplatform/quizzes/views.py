"""Quiz pages. Students: list, start/resume, take (autosave), submit, result/review.
Staff (TA + instructor): statistics, attempts. Instructors only: settings, extensions,
question fixes + regrade, bank re-sync, GIFT upload."""
from __future__ import annotations

import io
from collections import defaultdict

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.db.models import Count, Prefetch
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from courseplatform.core.charts import histogram_svg
from courseplatform.core.hooks import PartsFailed
from courseplatform.courses.models import STAFF_ROLES, Membership, Role
from courseplatform.courses.permissions import course_role_required

from . import bank, services
from .forms import ExtensionForm, GiftImportForm, QuestionEditForm, QuizSettingsForm
from .gift import GiftImportErrors
from .importing import import_gift
from .models import Attempt, AttemptQuestion, CodeCheck, Extension, Question, Quiz
from .statistics import quiz_statistics
from .sync import sync
from .tomlwrite import question_to_toml

def _quiz(request, quiz_slug) -> Quiz:
    quiz = get_object_or_404(Quiz.objects.select_related("course"), course=request.course, slug=quiz_slug)
    if not request.membership.is_staff_role and not quiz.published:
        raise Http404("No such quiz.")
    return quiz


def _attempt(request, attempt_id, *, owner_only=False) -> Attempt:
    """An attempt of this course; a student only ever gets their own (others: 404)."""
    attempt = get_object_or_404(Attempt.objects.select_related("quiz", "quiz__course", "student"),
                                pk=attempt_id, quiz__course=request.course)
    is_owner = attempt.student_id == request.user.pk
    if not is_owner and (owner_only or not request.membership.is_staff_role):
        raise Http404("No such attempt.")
    return attempt


def _field(item: AttemptQuestion) -> str:
    return f"q{item.pk}"


def _form_data(item: AttemptQuestion, post) -> dict:
    values = post.getlist(_field(item))
    name = {"single": "choice", "multiple": "choice", "truefalse": "value", "numeric": "value", "short": "text",
            "code": "code", "matching": "match"}[item.snapshot["type"]]
    return {name: values}


# --------------------------------------------------------------------------- student side
@course_role_required()
def index(request, course_slug):
    if not request.membership.is_staff_role:
        services.close_overdue(student=request.user)
    quizzes = list(Quiz.objects.filter(course=request.course).annotate(n_questions=Count("questions"))
                   .order_by("opens_at", "title"))
    staff = request.membership.is_staff_role
    if not staff:
        quizzes = [q for q in quizzes if q.published]
        mine = defaultdict(list)
        for a in Attempt.objects.filter(quiz__course=request.course, student=request.user):
            mine[a.quiz_id].append(a)
        rows = []
        for q in quizzes:
            attempts = mine.get(q.pk, [])
            open_attempt = next((a for a in attempts if a.is_open), None)
            ok, why = services.can_start(q, request.user)
            rows.append({"quiz": q, "attempts": attempts, "open_attempt": open_attempt, "can_start": ok, "why": why,
                         "grade": services.quiz_grade(q, attempts), "max_points": q.max_points})
    else:
        counts = dict(Attempt.objects.filter(quiz__course=request.course).values_list("quiz").annotate(n=Count("id")))
        in_progress = dict(Attempt.objects.filter(quiz__course=request.course, state=Attempt.State.OPEN)
                           .values_list("quiz").annotate(n=Count("id")))
        rows = [{"quiz": q, "attempt_count": counts.get(q.pk, 0), "in_progress": in_progress.get(q.pk, 0),
                 "max_points": q.max_points} for q in quizzes]
    return render(request, "quizzes/index.html", {"rows": rows, "staff": staff, "now": timezone.now(),
                                                  "is_instructor": request.membership.is_instructor})


@course_role_required()
def detail(request, course_slug, quiz_slug):
    quiz = _quiz(request, quiz_slug)
    # The page's facts from one read each of the attempts, the extension and the questions' points.
    attempts = services.student_attempts(quiz, request.user, order_by=("number",))
    ext = services.extension_for(quiz, request.user)
    points = list(quiz.active_questions().values_list("points", flat=True))
    ok, why = services.can_start(quiz, request.user, extension=ext, n_attempts=len(attempts),
                                 has_questions=bool(points))
    return render(request, "quizzes/detail.html", {
        "quiz": quiz, "attempts": attempts, "can_start": ok, "why": why, "extension": ext,
        "open_attempt": next((a for a in attempts if a.is_open), None),
        "grade": services.quiz_grade(quiz, attempts), "max_points": float(sum(points)),
        "description_html": bank.render_markdown(quiz.description),
        "n_questions": len(points),
    })


@require_POST
@course_role_required("student")
def start(request, course_slug, quiz_slug):
    quiz = _quiz(request, quiz_slug)
    try:
        attempt = services.start_attempt(quiz, request.user)
    except services.QuizError as exc:
        messages.error(request, str(exc))
        return redirect("quizzes:detail", course_slug, quiz.slug)
    return redirect("quizzes:take", course_slug, attempt.pk)


def _closed_redirect(request, course_slug, attempt, message=None):
    if message:
        messages.warning(request, message)
    return redirect("quizzes:result", course_slug, attempt.pk)


@course_role_required()
def take(request, course_slug, attempt_id):
    attempt = _attempt(request, attempt_id, owner_only=True)
    services.close_if_overdue(attempt)
    if not attempt.is_open:
        return _closed_redirect(request, course_slug, attempt)
    items = list(attempt.items.all())
    for item in items:
        item.field = _field(item)
        item.save_url = reverse("quizzes:answer", args=[course_slug, attempt.pk, item.pk])
        r = item.response or {}
        item.chosen = set(r.get("choices", [r["choice"]] if "choice" in r else []))
        if item.snapshot["type"] == "matching":
            item.match_rows = bank.matching_rows(item.snapshot, item.response)
    return render(request, "quizzes/take.html", {
        "attempt": attempt, "quiz": attempt.quiz, "items": items, "seconds_left": attempt.seconds_left(),
        "answered": sum(1 for i in items if i.response is not None),
    })


@require_POST
@course_role_required()
def answer(request, course_slug, attempt_id, item_id):
    """Autosave of one answer (htmx). Replies with a small status fragment."""
    attempt = _attempt(request, attempt_id, owner_only=True)
    try:
        # The item is read once, under the attempt's lock, in save_answer (a foreign item: AnswerError).
        item = services.save_answer(attempt.pk, item_id, lambda item: _form_data(item, request.POST))
    except services.QuizError as exc:
        resp = _status(request, str(exc), ok=False, status=409)
        resp["HX-Redirect"] = reverse("quizzes:result", args=[course_slug, attempt.pk])
        if request.htmx:
            messages.warning(request, str(exc))
        return resp
    except bank.AnswerError as exc:
        return _status(request, str(exc), ok=False, status=400)
    if item.response is None:
        return _status(request, "Answer cleared.", ok=True)
    return _status(request, f"Saved {timezone.localtime():%H:%M:%S}", ok=True)


@require_POST
@course_role_required()
def check(request, course_slug, attempt_id, item_id):
    """htmx: run the visible tests on the code in the editor; not an attempt, nothing is scored."""
    attempt = _attempt(request, attempt_id, owner_only=True)
    item = AttemptQuestion.objects.filter(pk=item_id, attempt=attempt).first()
    if item is None:
        raise Http404("No such question.")
    code = request.POST.get(_field(item), "")
    try:
        code_check = services.request_check(attempt.pk, item.pk, request.user, code)
    except services.QuizError as exc:
        return render(request, "quizzes/_check.html", {"error": str(exc), "item": item, "attempt": attempt},
                      status=200 if request.htmx else 409)
    return render(request, "quizzes/_check.html", {"check": code_check, "item": item, "attempt": attempt})


@require_GET
@course_role_required()
def check_status(request, course_slug, attempt_id, check_id):
    attempt = _attempt(request, attempt_id, owner_only=True)
    code_check = get_object_or_404(CodeCheck, pk=check_id, item__attempt=attempt)
    return render(request, "quizzes/_check.html", {"check": code_check, "item": code_check.item, "attempt": attempt})


def _status(request, text, *, ok, status=200):
    # htmx does not swap 4xx bodies by default: answer 200 to htmx, the real status otherwise.
    html = format_html('<span class="save-status {}" role="status">{}</span>', "ok" if ok else "bad", text)
    return HttpResponse(html, status=200 if request.htmx else status)


@require_POST
@course_role_required()
def submit(request, course_slug, attempt_id):
    attempt = _attempt(request, attempt_id, owner_only=True)
    if not attempt.is_open:  # double click / second tab: the first submit already counted
        messages.info(request, "This attempt was already submitted; nothing changed.")
        return redirect("quizzes:result", course_slug, attempt.pk)
    if not attempt.is_overdue():
        # Answers in the form (the last keystrokes may not have been autosaved yet).
        errors = []
        for item in attempt.items.all():
            if _field(item) not in request.POST:
                continue
            try:
                services.save_answer(attempt.pk, item.pk, _form_data(item, request.POST))
            except bank.AnswerError as exc:
                errors.append(f"Question {item.position}: {exc}")
            except services.QuizError:
                break
        if errors:
            for e in errors:
                messages.error(request, e)
            messages.error(request, "Not submitted yet: fix the answers above, then submit again.")
            return redirect("quizzes:take", course_slug, attempt.pk)
    attempt, closed_now = services.submit_attempt(attempt.pk)
    if closed_now and attempt.state == Attempt.State.EXPIRED:
        messages.warning(request, "Time was up: your attempt was closed at the deadline with the answers saved "
                                  "before it.")
    elif not closed_now:
        messages.info(request, "This attempt was already submitted; nothing changed.")
    return redirect("quizzes:result", course_slug, attempt.pk)


def _review_items(attempt, show_key: bool):
    items = list(attempt.items.select_related("question").all())
    for item in items:
        snap = item.snapshot
        r = item.response or {}
        item.chosen = set(r.get("choices", [r["choice"]] if "choice" in r else []))
        item.correct_text = bank.correct_answer_text(snap) if show_key else ""
        if snap["type"] == "truefalse" and "value" in r:
            item.given = "True" if r["value"] else "False"
        elif snap["type"] == "numeric":
            item.given = r.get("raw", "")
        elif snap["type"] == "short":
            item.given = r.get("text", "")
        elif snap["type"] == "matching":
            item.given = ""
            item.match_review = bank.matching_review(snap, item.response)
        else:
            item.given = ""
        item.full = item.score is not None and abs(item.score - item.max_score) < 1e-9
    return items


@course_role_required()
def result(request, course_slug, attempt_id):
    attempt = _attempt(request, attempt_id)
    services.close_if_overdue(attempt)
    if attempt.is_open:
        if attempt.student_id == request.user.pk:
            return redirect("quizzes:take", course_slug, attempt.pk)
    staff = request.membership.is_staff_role
    review = staff or attempt.review_open()
    ctx = {"attempt": attempt, "quiz": attempt.quiz, "review": review, "staff": staff,
           "items": _review_items(attempt, review)}
    if request.htmx and request.GET.get("poll"):
        return render(request, "quizzes/_result_body.html", ctx)
    return render(request, "quizzes/result.html", ctx)


# --------------------------------------------------------------------------- staff side
@course_role_required(*STAFF_ROLES)
def stats(request, course_slug, quiz_slug):
    quiz = _quiz(request, quiz_slug)
    services.close_overdue(quiz=quiz)
    st = quiz_statistics(quiz)
    return render(request, "quizzes/stats.html", {
        "quiz": quiz, "rows": st.rows, "n_attempts": st.n_attempts, "max_points": quiz.max_points,
        "mean": st.mean, "median": st.median, "in_progress": st.in_progress,
        "is_instructor": request.membership.is_instructor, "regrading": st.regrading,
        "histogram": histogram_svg(st.grades, quiz.max_points,
                                   title=f"Quiz scores of {len(st.grades)} student(s) for {quiz.title}") if st.grades else None,
    })


@course_role_required(*STAFF_ROLES)
def attempts(request, course_slug, quiz_slug):
    quiz = _quiz(request, quiz_slug)
    services.close_overdue(quiz=quiz)
    User = get_user_model()
    student_ids = Membership.objects.filter(course=request.course).students().values_list("user_id", flat=True)
    students = User.objects.filter(pk__in=student_ids).order_by("last_name", "first_name", "username").prefetch_related(
        Prefetch("quiz_attempts", queryset=Attempt.objects.filter(quiz=quiz).order_by("number"), to_attr="these"))
    extensions = {e.student_id: e for e in Extension.objects.filter(quiz=quiz)}
    rows = [{"student": s, "attempts": s.these, "extension": extensions.get(s.pk),
             "grade": services.quiz_grade(quiz, s.these)} for s in students]
    return render(request, "quizzes/attempts.html", {"quiz": quiz, "rows": rows, "max_points": quiz.max_points,
                                                     "is_instructor": request.membership.is_instructor})


@course_role_required(Role.INSTRUCTOR)
def quiz_settings(request, course_slug, quiz_slug):
    quiz = _quiz(request, quiz_slug)
    form = QuizSettingsForm(request.POST or None, instance=quiz)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Quiz settings saved.")
        return redirect("quizzes:detail", course_slug, quiz.slug)
    return render(request, "quizzes/settings.html", {"quiz": quiz, "form": form})


@course_role_required(Role.INSTRUCTOR)
def extensions(request, course_slug, quiz_slug):
    quiz = _quiz(request, quiz_slug)
    existing = None
    student_id = request.POST.get("student", "") if request.method == "POST" else ""
    if student_id.isdigit():
        existing = Extension.objects.filter(quiz=quiz, student_id=int(student_id)).first()
    form = ExtensionForm(request.POST or None, instance=existing, quiz=quiz,
                         initial={"student": request.GET.get("student")})
    if request.method == "POST" and form.is_valid():
        ext = services.save_extension(form.save(commit=False), quiz, request.user)
        messages.success(request, f"Extension saved for {ext.student.get_full_name() or ext.student.username}.")
        return redirect("quizzes:extensions", course_slug, quiz.slug)
    return render(request, "quizzes/extensions.html", {
        "quiz": quiz, "form": form, "extensions": Extension.objects.filter(quiz=quiz).select_related("student")})


@course_role_required(Role.INSTRUCTOR)
def edit_question(request, course_slug, quiz_slug, question_id):
    quiz = _quiz(request, quiz_slug)
    question = get_object_or_404(Question, pk=question_id, quiz=quiz)
    form = QuestionEditForm(request.POST or None, key=question.key,
                            initial={"source": question_to_toml(question.spec), "regrade": True})
    if request.method == "POST" and form.is_valid():
        changed = services.update_question(question, form.spec)
        if not changed:
            messages.info(request, "No change.")
        else:
            msg = f"Question {question.key} is now version {question.version}."
            if form.cleaned_data["regrade"]:
                n = services.regrade_quiz(quiz)
                msg += f" {n} attempt(s) regraded."
            messages.success(request, msg)
            if quiz.source_path and quiz.source == "bank":
                messages.warning(request, f"Kept as the web version: the next bank sync will not overwrite it and "
                                          f"will say so until {quiz.source_path} holds the same question (copy the "
                                          "TOML from this editor into the file).")
        return redirect("quizzes:stats", course_slug, quiz.slug)
    try:  # a sample student's view (parameters drawn with seed 0)
        preview = bank.example_text_html(question.spec)[0]
    except Exception:  # noqa: BLE001 - a preview must not break the editor
        preview = bank.render_markdown(question.spec.get("text", ""))
    return render(request, "quizzes/edit_question.html", {"quiz": quiz, "question": question, "form": form,
                                                          "preview": preview})


@require_POST
@course_role_required(Role.INSTRUCTOR)
def regrade(request, course_slug, quiz_slug):
    quiz = _quiz(request, quiz_slug)
    n = services.regrade_quiz(quiz)
    messages.success(request, f"{n} attempt(s) regraded with the current questions.")
    return redirect("quizzes:stats", course_slug, quiz.slug)


@require_POST
@course_role_required(Role.INSTRUCTOR)
def resync(request, course_slug):
    out = io.StringIO()
    try:
        summary = sync(request.course, settings.ASSIGNMENTS_DIR, out)
    except PartsFailed as exc:  # the broken files are logged and shown below; the others are synced
        summary = exc.result
    for line in out.getvalue().splitlines():
        (messages.error if "ERROR" in line else messages.info)(request, line)
    if not out.getvalue():
        messages.warning(request, f"No bank files in {settings.ASSIGNMENTS_DIR}/quizzes/.")
    elif not summary["errors"]:
        messages.success(request, "Banks synchronised.")
    return redirect("quizzes:index", course_slug)


@course_role_required(Role.INSTRUCTOR)
def import_gift_view(request, course_slug):
    form = GiftImportForm(request.POST or None, request.FILES or None)
    errors = []
    if request.method == "POST" and form.is_valid():
        try:
            quiz, counts = import_gift(request.course, form.cleaned_data["file"], slug=form.cleaned_data["slug"],
                                       title=form.cleaned_data["title"],
                                       source_path=request.FILES["file"].name[:200])
        except GiftImportErrors as exc:
            errors = [e.describe() for e in exc.errors]
        except ValueError as exc:
            form.add_error("slug", str(exc))
        else:
            messages.success(request, f"Imported {counts['new'] + counts['changed'] + counts['same']} questions into "
                                      f"“{quiz.title}” ({counts['new']} new, {counts['changed']} changed). "
                                      "Set its schedule and publish it.")
            if counts["skipped"]:
                messages.warning(request, format_html(
                    "Skipped {} question{} that cannot be imported (the rest was imported):"
                    "<div data-testid=\"gift-skipped\">{}</div>", len(counts["skipped"]),
                    "" if len(counts["skipped"]) == 1 else "s",
                    format_html_join("", "<div>{}</div>", ((e.describe(),) for e in counts["skipped"]))))
            return redirect("quizzes:settings", course_slug, quiz.slug)
    return render(request, "quizzes/import_gift.html", {"form": form, "errors": errors})
