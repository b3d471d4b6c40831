"""The rules of taking a quiz, in one place (views, tasks, commands and tests call these).

Concurrency: every state change of an attempt happens in a transaction holding the
attempt's row lock (select_for_update), so a double click, two tabs or the sweeper
closing the attempt at the same time give one result. One open attempt per student and
quiz is also a database constraint.
"""
from __future__ import annotations


from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from courseplatform.grading import checks, jobs

from . import bank, dispatch
from .codepacks import queue_for
from .models import (
    CODE_PENDING, Attempt, AttemptQuestion, CodeCheck, Extension, Question, Quiz, compute_deadline, effective_close,
)


class QuizError(Exception):
    """A refusal with a message for the student."""


def save_extension(extension: Extension, quiz: Quiz, granted_by) -> Extension:
    """Store a student's extension of a quiz; an open attempt of theirs gets the new deadline at once."""
    with transaction.atomic():
        extension.quiz, extension.granted_by = quiz, granted_by
        extension.save()
        for attempt in Attempt.objects.select_for_update().filter(quiz=quiz, student=extension.student,
                                                                  state=Attempt.State.OPEN):
            attempt.deadline = compute_deadline(quiz, attempt.started_at, extension)
            attempt.save(update_fields=["deadline"])
    return extension


def extension_for(quiz: Quiz, student) -> Extension | None:
    return Extension.objects.filter(quiz=quiz, student=student).first()


def attempts_used(quiz: Quiz, student) -> int:
    return Attempt.objects.filter(quiz=quiz, student=student).count()


_UNKNOWN = object()


def can_start(quiz: Quiz, student, now=None, *, extension=_UNKNOWN, n_attempts: int | None = None,
              has_questions: bool | None = None) -> tuple[bool, str]:
    """Whether the student may start a new attempt now, and why not. A caller that has already
    loaded the student's extension, attempt count or the quiz's questions passes them in, so one
    page does not ask the database the same question twice."""
    now = now or timezone.now()
    ext = extension_for(quiz, student) if extension is _UNKNOWN else extension
    close = effective_close(quiz, ext)
    if not quiz.published:
        return False, "This quiz is not published."
    if quiz.opens_at and now < quiz.opens_at:
        return False, f"This quiz opens at {timezone.localtime(quiz.opens_at):%d.%m.%Y %H:%M %Z}."
    if close and now >= close:
        return False, "This quiz has closed."
    if not (quiz.active_questions().exists() if has_questions is None else has_questions):
        return False, "This quiz has no questions yet."
    if n_attempts is None and quiz.max_attempts:
        n_attempts = attempts_used(quiz, student)
    if quiz.max_attempts and n_attempts >= quiz.max_attempts:
        return False, f"You have used all {quiz.max_attempts} attempt(s) of this quiz."
    return True, ""


def _seeds(quiz: Quiz, student_id: int, number: int, question_key: str) -> tuple[int, int]:
    # Parameters: one draw per (course, quiz, question, student), the same in every attempt.
    param_seed = bank.seed_for("params", quiz.course.slug, quiz.slug, question_key, student_id)
    choice_seed = bank.seed_for("choices", quiz.course.slug, quiz.slug, question_key, student_id, number)
    return param_seed, choice_seed


def start_attempt(quiz: Quiz, student, now=None) -> Attempt:
    """Start a new attempt, or return the student's open one (resume). Raises QuizError."""
    now = now or timezone.now()
    # One read of the student's attempts, the extension and the questions serves every check below.
    attempts = student_attempts(quiz, student, now)
    existing = next((a for a in attempts if a.is_open), None)
    if existing:
        return existing
    ext = extension_for(quiz, student)
    questions = list(quiz.active_questions())
    ok, why = can_start(quiz, student, now, extension=ext, n_attempts=len(attempts), has_questions=bool(questions))
    if not ok:
        raise QuizError(why)
    try:
        with transaction.atomic():
            number = (Attempt.objects.filter(quiz=quiz, student=student).aggregate(m=Max("number"))["m"] or 0) + 1
            attempt = Attempt.objects.create(
                quiz=quiz, student=student, number=number, started_at=now,
                deadline=compute_deadline(quiz, now, ext),
                max_score=sum(q.points for q in questions),
            )
            if quiz.shuffle_questions:
                questions = bank.Draw(bank.seed_for("order", quiz.course.slug, quiz.slug, student.pk, number)
                                      ).shuffled(questions)
            items = []
            for pos, q in enumerate(questions, start=1):
                param_seed, choice_seed = _seeds(quiz, student.pk, number, q.key)
                snap = bank.build_snapshot(q.spec, param_seed=param_seed, choice_seed=choice_seed,
                                           shuffle_choices=quiz.shuffle_choices)
                items.append(AttemptQuestion(attempt=attempt, question=q, position=pos, version=q.version,
                                             snapshot=snap, max_score=q.points))
            AttemptQuestion.objects.bulk_create(items)
    except IntegrityError:
        # A concurrent request (double click, second tab) created it first: resume that one.
        existing = Attempt.objects.filter(quiz=quiz, student=student, state=Attempt.State.OPEN).first()
        if existing:
            return existing
        raise QuizError("Could not start the attempt; please try again.") from None
    return attempt


# "Check" on a code question: the visible tests only, not an attempt, no score; one at a time, and
# the one limit of checks (grading.checks: CHECKS_PER_WINDOW per CHECK_WINDOW_S) per attempt.


def request_check(attempt_id: int, item_id: int, student, code: str, now=None) -> CodeCheck:
    """Queue a check of ``code`` for one code question of an open attempt. Raises QuizError."""
    now = now or timezone.now()
    with transaction.atomic():
        attempt = Attempt.objects.select_for_update().get(pk=attempt_id)
        if attempt.student_id != student.pk or not attempt.is_open or attempt.is_overdue(now):
            raise QuizError("This attempt is closed: checks are only possible while it is open.")
        item = AttemptQuestion.objects.filter(pk=item_id, attempt_id=attempt.pk).first()
        if item is None or item.snapshot.get("type") != "code":
            raise QuizError("Only code questions can be checked.")
        if len(code.encode("utf-8")) > 200_000:
            raise QuizError("The code is too long to check.")
        mine = CodeCheck.objects.filter(item__attempt=attempt)
        if mine.filter(state=CodeCheck.State.PENDING).exists():
            raise QuizError("A check is still running: wait for its result.")
        wait = checks.wait_seconds(mine, now)
        if wait is not None:
            minutes = wait // 60 + 1
            raise QuizError(f"{checks.limit()} checks in {checks.window_s() // 60} minutes is the limit: "
                            f"try again in about {minutes} minute{'s' if minutes != 1 else ''}.")
        check = CodeCheck.objects.create(item=item, student=student, code=code)
        jobs.enqueue(dispatch.QUIZ_CHECK_KIND, check.pk, queue_for(item.snapshot["pack"]))
    return check


def save_answer(attempt_id: int, item_id: int, data, now=None) -> AttemptQuestion:
    """Autosave one answer: one short transaction that locks the attempt row (only this student's
    requests wait on it) and updates the response columns of one item. ``data`` is the form data,
    or a function of the item returning it (the field names depend on the question's type).
    Raises QuizError when the attempt is no longer open (late) and bank.AnswerError for input that
    is not an answer or a question outside the attempt (nothing is stored then)."""
    now = now or timezone.now()
    late = False
    with transaction.atomic():
        attempt = Attempt.objects.select_for_update().get(pk=attempt_id)
        if not attempt.is_open:
            raise QuizError("This attempt is closed; the answer was not saved.")
        if attempt.is_overdue(now):
            # Close it (this commits), then refuse the answer below.
            _finish(attempt, Attempt.State.EXPIRED, attempt.deadline)
            late = True
        else:
            try:
                item = AttemptQuestion.objects.get(pk=item_id, attempt_id=attempt.pk)
            except AttemptQuestion.DoesNotExist:
                raise bank.AnswerError("That question is not part of your attempt.") from None
            response = bank.clean_response(item.snapshot, data(item) if callable(data) else data)
            item.response = response
            item.answered_at = now if response is not None else None
            item.save(update_fields=["response", "answered_at"])
    if late:
        raise QuizError("Time is up: the answer arrived after the deadline and was not saved. "
                        "Your attempt has been closed with the answers saved before.")
    return item


def submit_attempt(attempt_id: int, now=None) -> tuple[Attempt, bool]:
    """Submit; idempotent. Returns (attempt, whether this call closed it)."""
    now = now or timezone.now()
    with transaction.atomic():
        attempt = Attempt.objects.select_for_update().select_related("quiz").get(pk=attempt_id)
        if not attempt.is_open:
            return attempt, False
        if attempt.is_overdue(now):
            _finish(attempt, Attempt.State.EXPIRED, attempt.deadline)
        else:
            _finish(attempt, Attempt.State.SUBMITTED, now)
    return attempt, True


def student_attempts(quiz: Quiz, student, now=None, order_by: tuple = ()) -> list[Attempt]:
    """The student's attempts of the quiz, any open one past its deadline closed first: one read
    of the attempts when none is overdue (the quiz page and start: every student, every lecture)."""
    now = now or timezone.now()
    qs = Attempt.objects.filter(quiz=quiz, student=student).order_by(*order_by)
    attempts = list(qs)
    if any(a.is_overdue(now) for a in attempts):
        close_overdue(quiz=quiz, student=student, now=now)
        attempts = list(qs.all())
    return attempts


def close_if_overdue(attempt: Attempt, now=None) -> None:
    """Close this attempt if it is open past its deadline (lazily, on access) and reload its state."""
    if attempt.is_overdue(now):
        close_overdue(quiz=attempt.quiz, student=attempt.student_id, now=now)
        attempt.refresh_from_db(fields=["state", "finished_at", "score", "max_score", "pending"])


def close_overdue(quiz: Quiz | None = None, student=None, now=None) -> int:
    """Close every open attempt past its deadline (lazily on access, and by the periodic task)."""
    now = now or timezone.now()
    # No ordering: the model's default ordering would join quiz and course for nothing.
    qs = Attempt.objects.filter(state=Attempt.State.OPEN, deadline__lte=now).order_by()
    if quiz is not None:
        qs = qs.filter(quiz=quiz)
    if student is not None:
        qs = qs.filter(student=student)
    closed = 0
    for pk in list(qs.values_list("pk", flat=True)):
        with transaction.atomic():
            attempt = Attempt.objects.select_for_update(skip_locked=True).filter(pk=pk).first()
            if attempt and attempt.is_open and attempt.is_overdue(now):
                _finish(attempt, Attempt.State.EXPIRED, attempt.deadline)
                closed += 1
    return closed


def _finish(attempt: Attempt, state: str, when) -> None:
    attempt.state = state
    attempt.finished_at = when
    attempt.save(update_fields=["state", "finished_at"])
    grade_attempt(attempt)


def grade_attempt(attempt: Attempt, *, regrade: bool = False) -> None:
    """Grade every non-code item now; queue code items for the engine. In a regrade, a code answer
    keeps its previous score and feedback while the engine grades it again (the attempt's total,
    the quiz mean and the gradebook do not dip meanwhile); the new result replaces them."""
    code_items = []
    items = list(attempt.items.all())
    for item in items:
        if item.snapshot["type"] == "code":
            if item.response is None:
                item.score, item.feedback, item.grading_state, item.result = 0.0, "No answer.", "graded", None
            elif regrade and item.score is not None:
                item.grading_state = "pending"
                code_items.append((item.pk, item.snapshot["pack"]))
            else:
                item.score, item.feedback, item.grading_state = None, "", CODE_PENDING
                code_items.append((item.pk, item.snapshot["pack"]))
        else:
            fraction, feedback = bank.grade(item.snapshot, item.response)
            item.score = round(fraction * item.max_score, 6)
            item.feedback = feedback
    AttemptQuestion.objects.bulk_update(items, ["score", "feedback", "grading_state", "result"])
    update_total(attempt, items)
    for pk, pack in code_items:
        jobs.enqueue(dispatch.QUIZ_ANSWER_KIND, pk, queue_for(pack))


def update_total(attempt: Attempt, items: list[AttemptQuestion] | None = None) -> None:
    items = list(attempt.items.all()) if items is None else items
    attempt.pending = sum(1 for i in items if i.grading_state == CODE_PENDING)
    attempt.score = round(sum(i.score or 0.0 for i in items), 6)
    attempt.max_score = sum(i.max_score for i in items)
    attempt.save(update_fields=["pending", "score", "max_score"])


def regrade_quiz(quiz: Quiz, *, update_versions: bool = True) -> int:
    """Regrade every finished attempt; with update_versions, items move to the questions' current
    versions (drawn parameters and choice order are kept). Returns the number of attempts regraded."""
    count = 0
    questions = {q.pk: q for q in quiz.questions.all()}
    for pk in list(quiz.attempts.exclude(state=Attempt.State.OPEN).values_list("pk", flat=True)):
        with transaction.atomic():
            attempt = Attempt.objects.select_for_update().get(pk=pk)
            if attempt.is_open:
                continue
            for item in attempt.items.all():
                q = questions[item.question_id]
                if update_versions and item.version != q.version:
                    param_seed, choice_seed = _seeds(quiz, attempt.student_id, attempt.number, q.key)
                    item.snapshot = bank.build_snapshot(q.spec, param_seed=param_seed, choice_seed=choice_seed,
                                                        shuffle_choices=quiz.shuffle_choices, keep=item.snapshot)
                    if item.response and item.snapshot["type"] == "matching":
                        item.response = _kept_matches(item.snapshot, item.response)
                    if item.response and not _response_still_valid(item.snapshot, item.response):
                        item.response = None
                    item.version = q.version
                    item.max_score = q.points
                    item.save(update_fields=["snapshot", "version", "max_score", "response"])
            attempt.regraded_at = timezone.now()
            attempt.save(update_fields=["regraded_at"])
            grade_attempt(attempt, regrade=True)
        count += 1
    return count


def _kept_matches(snap, response) -> dict | None:
    """A matching answer after a regrade: the matches whose item and answer still exist."""
    stems = {s["id"] for s in snap["stems"]}
    options = {o["id"] for o in snap["options"]}
    kept = {k: v for k, v in response.get("matches", {}).items() if k in stems and v in options}
    return {"matches": kept} if kept else None


def _response_still_valid(snap, response) -> bool:
    kind = snap["type"]
    if kind == "matching":
        # Matches to items or answers that are gone are dropped one by one (see _kept_matches).
        return bool(_kept_matches(snap, response))
    if kind in ("single", "multiple"):
        ids = {c["id"] for c in snap["choices"]}
        chosen = [response.get("choice")] if kind == "single" else response.get("choices", [])
        return all(c in ids for c in chosen)
    expected = {"truefalse": "value", "numeric": "value", "short": "text", "code": "code"}[kind]
    return expected in response


def update_question(question: Question, spec: dict) -> bool:
    """Store an edited spec; bumps the version when the content changed. Returns changed."""
    digest = bank.spec_hash(spec)
    if digest == question.content_hash:
        return False
    question.spec = spec
    question.kind = spec["type"]
    question.points = spec["points"]
    question.content_hash = digest
    question.version += 1
    # The web version is the truth until the bank file says the same (quizzes/sync.py apply_bank).
    question.edited_on_web = bool(question.quiz.source_path)
    question.save()
    return True


def quiz_grade(quiz: Quiz, attempts: list[Attempt]) -> float | None:
    """The score that counts for the gradebook, by the quiz's rule (finished attempts only)."""
    done = [a for a in attempts if not a.is_open and a.score is not None]
    if not done:
        return None
    if quiz.grading == "last":
        return max(done, key=lambda a: a.number).score
    if quiz.grading == "mean":
        return round(sum(a.score for a in done) / len(done), 4)
    return max(a.score for a in done)
