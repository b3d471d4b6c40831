"""Everything a live session does, in short transactions; the views and the push consumer call these.

The database is the truth: phase, current question, who joined, every answer. Push messages
(push.py) are sent after the commit and carry only what the database already says, so a lost
message (a restart of the push server or of Redis) is repaired by the state sent on reconnect.
"""
from __future__ import annotations

import html
import math
import secrets
from collections import Counter
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from courseplatform.courses.models import Attendance, AttendanceStatus, Membership, Role
from courseplatform.quizzes import bank

from . import push
from .models import JoinFailure, LiveQuestion, LiveSession, Participant, Phase, Response

KINDS = ("single", "multiple", "truefalse", "numeric", "short")  # code questions stay in timed quizzes
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read off a projector
CODE_LENGTH = 6  # 32**6 ~ 10**9 codes
JOIN_FAILURES_ALLOWED = 10
JOIN_WINDOW = timedelta(minutes=10)
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class LiveError(Exception):
    """Refused with a message for the phone or the control page; ``status`` is the HTTP status."""

    def __init__(self, message: str, status: int = 409):
        super().__init__(message)
        self.status = status


# --------------------------------------------------------------------------- starting
def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def _seed(live_id: int, key: str, user_id: int) -> int:
    return bank.seed_for("live", live_id, key, user_id)


def start(course, lecture, questions, *, title: str, user, quiz=None, mark_attendance: bool = True) -> LiveSession:
    """A new session in the lobby with copies of ``questions`` (quiz Question rows), in order."""
    usable = [q for q in questions if q.kind in KINDS]
    if not usable:
        raise LiveError("Pick at least one question (code questions cannot be asked live).", 400)
    for _ in range(5):
        try:
            with transaction.atomic():
                live = LiveSession.objects.create(course=course, lecture=lecture, quiz=quiz, title=title,
                                                  code=new_code(), mark_attendance=mark_attendance, created_by=user)
                rows = []
                for pos, q in enumerate(usable):
                    spec = q.spec
                    personal = bool(spec.get("params"))
                    snap = bank.build_snapshot(spec, param_seed=_seed(live.pk, q.key, 0), choice_seed=0,
                                               shuffle_choices=False)
                    rows.append(LiveQuestion(live=live, position=pos, key=q.key, kind=q.kind, spec=spec,
                                             personal=personal, snapshot=snap))
                LiveQuestion.objects.bulk_create(rows)
                return live
        except IntegrityError:
            continue  # the code was taken (one in a billion): draw another
    raise LiveError("Could not create the session; please try again.", 500)


# --------------------------------------------------------------------------- joining
def join(user, code: str) -> LiveSession:
    """Join the running session with this code in one of the user's courses (as a student).
    Unknown codes, and codes of courses the user is not a student of, are the same failure;
    after JOIN_FAILURES_ALLOWED failures in JOIN_WINDOW every attempt is refused."""
    now = timezone.now()
    if JoinFailure.objects.filter(user=user, at__gte=now - JOIN_WINDOW).count() >= JOIN_FAILURES_ALLOWED:
        raise LiveError("Too many wrong codes: wait a few minutes, then type the code from the screen again.", 429)
    code = "".join(ch for ch in (code or "").upper() if ch.isalnum())[:CODE_LENGTH + 2]
    live = None
    if len(code) == CODE_LENGTH:
        live = (LiveSession.objects.select_related("course", "lecture")
                .filter(code=code, course__memberships__user=user, course__memberships__role=Role.STUDENT)
                .exclude(phase=Phase.ENDED).first())
    if live is None:
        JoinFailure.objects.create(user=user)
        raise LiveError("No live quiz with that code is running in your courses. Check the code on the screen.", 404)
    with transaction.atomic():
        Participant.objects.get_or_create(live=live, user=user)
        if live.mark_attendance:
            row, created = Attendance.objects.get_or_create(
                session=live.lecture, user=user, defaults={"status": AttendanceStatus.PRESENT})
            if not created and row.status != AttendanceStatus.PRESENT:
                row.status, row.marked_by = AttendanceStatus.PRESENT, None
                row.save(update_fields=["status", "marked_by", "marked_at"])
    transaction.on_commit(lambda: push.counts(live.pk))
    return live


# --------------------------------------------------------------------------- pacing
def _effective_phase(live: LiveSession, now=None) -> str:
    """An open question whose countdown ran out is closed, whether or not anyone pressed Close."""
    if live.phase == Phase.OPEN and live.closes_at and live.closes_at <= (now or timezone.now()):
        return Phase.CLOSED
    return live.phase


def control(live_id: int, action: str, *, version: int | None, seconds: int | None = None) -> LiveSession:
    """One step of the instructor: next (open the next question), close, countdown, reveal, end."""
    now = timezone.now()
    with transaction.atomic():
        live = LiveSession.objects.select_for_update().get(pk=live_id)
        if version is not None and version != live.version:
            raise LiveError("The session changed in another window: the page now shows the current state.")
        phase = _effective_phase(live, now)
        n = live.questions.count()
        q = live.questions.filter(position=live.current).first() if live.current >= 0 else None
        if action == "next":
            if phase == Phase.OPEN:
                raise LiveError("Close the open question first.")
            if phase == Phase.ENDED or live.current + 1 >= n:
                raise LiveError("There is no next question.")
            if q and not q.closed_at:
                q.closed_at = live.closes_at or now
                q.save(update_fields=["closed_at"])
            live.current += 1
            live.phase, live.closes_at = Phase.OPEN, None
            LiveQuestion.objects.filter(live=live, position=live.current).update(opened_at=now, closed_at=None)
        elif action == "close":
            if phase != Phase.OPEN and not (live.phase == Phase.OPEN and phase == Phase.CLOSED):
                raise LiveError("No question is open.")
            live.phase = Phase.CLOSED
            q.closed_at = min(now, live.closes_at) if live.closes_at else now
            q.save(update_fields=["closed_at"])
            live.closes_at = None
        elif action == "countdown":
            if phase != Phase.OPEN:
                raise LiveError("No question is open.")
            if seconds is None or not 3 <= seconds <= 600:
                raise LiveError("A countdown lasts 3 to 600 seconds.", 400)
            live.closes_at = now + timedelta(seconds=seconds)
        elif action == "reveal":
            if phase != Phase.CLOSED:
                raise LiveError("Close the question before showing the answer.")
            if live.phase == Phase.OPEN:  # countdown ran out without a Close
                q.closed_at = live.closes_at
                q.save(update_fields=["closed_at"])
                live.closes_at = None
            live.phase = Phase.REVEALED
        elif action == "end":
            if phase == Phase.ENDED:
                raise LiveError("The session has already ended.")
            if q and not q.closed_at:
                q.closed_at = min(now, live.closes_at) if live.closes_at else now
                q.save(update_fields=["closed_at"])
            live.phase, live.closes_at, live.ended_at = Phase.ENDED, None, now
        else:
            raise LiveError("Unknown action.", 400)
        live.version += 1
        live.save()
    transaction.on_commit(lambda: push.state(live.pk))
    return live


# --------------------------------------------------------------------------- answering
def _student_snapshot(q: LiveQuestion, user_id: int) -> dict:
    if not q.personal:
        return q.snapshot
    return bank.build_snapshot(q.spec, param_seed=_seed(q.live_id, q.key, user_id), choice_seed=0,
                               shuffle_choices=False)


_QUESTIONS: dict[int, LiveQuestion] = {}  # id -> question: a started session's copies never change


def _question(live_id: int, question_id) -> LiveQuestion:
    """The session's question ``question_id`` (kept per process after the first look-up: its spec
    and snapshot are copies made when the session started, never edited)."""
    try:
        question_id = int(question_id)
    except (TypeError, ValueError):
        raise LiveError("The page is out of date: it now shows the current question.", 400) from None
    q = _QUESTIONS.get(question_id)
    if q is None:
        q = LiveQuestion.objects.filter(pk=question_id).only(
            "id", "live_id", "position", "key", "kind", "spec", "personal", "snapshot").first()
        if q is None:
            raise LiveError("That question is not part of this live quiz.", 400)
        if len(_QUESTIONS) > 4096:
            _QUESTIONS.clear()
        _QUESTIONS[question_id] = q
    if q.live_id != live_id:
        raise LiveError("That question is not part of this live quiz.", 400)
    return q


# One statement stores an answer: only while its question is the session's open one (a Close holds
# the session's row lock, FOR SHARE waits for it and then sees the closed phase), only from an
# active user who is a joined student of the course and (on a socket) whose login session still
# exists (logged out elsewhere: refused), once per student and question (ON CONFLICT: a retry
# stores nothing).
_INSERT = """
WITH s AS (
    SELECT id, course_id FROM live_livesession
    WHERE id = %(live)s AND current = %(position)s AND phase = 'open'
      AND (closes_at IS NULL OR closes_at > %(now)s)
    FOR SHARE
)
INSERT INTO live_response (question_id, user_id, response, snapshot, score, answered_at)
SELECT %(question)s, %(user)s, %(response)s, %(snapshot)s, %(score)s, %(now)s FROM s
WHERE EXISTS (SELECT 1 FROM live_participant p WHERE p.live_id = s.id AND p.user_id = %(user)s)
  AND EXISTS (SELECT 1 FROM auth_user u WHERE u.id = %(user)s AND u.is_active)
  AND (%(session)s::text IS NULL OR EXISTS (SELECT 1 FROM django_session d
                                           WHERE d.session_key = %(session)s AND d.expire_date > %(now)s))
  AND EXISTS (SELECT 1 FROM courses_membership m
              WHERE m.course_id = s.course_id AND m.user_id = %(user)s AND m.role = %(role)s)
ON CONFLICT (question_id, user_id) DO NOTHING
RETURNING id
"""


def answer(live_id: int, user, question_id, data, session_key: str | None = None) -> tuple[Response, bool]:
    """Store one answer of a joined student to the open question, committed before this returns.
    Returns (response, created): the same answer sent again (a retry whose "received" was lost) is
    (the stored one, False). Raises LiveError for everything else, with nothing stored.
    ``session_key``: the login session a socket was opened with, which must still exist.

    The usual case is one round trip to the database (the question is cached, the answer cleaned
    and graded here, and _INSERT checks the rest); only a refused or repeated answer looks further
    to say why."""
    from django.db import connection
    from psycopg.types.json import Jsonb

    now = timezone.now()
    q = _question(live_id, question_id)
    snap = _student_snapshot(q, user.pk)
    try:
        cleaned = bank.clean_response(snap, data)
    except bank.AnswerError as exc:
        raise LiveError(str(exc), 400) from None
    if cleaned is None:
        raise LiveError("Choose or type an answer first.", 400)
    score, _ = bank.grade(snap, cleaned)
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute(_INSERT, {"live": live_id, "position": q.position, "now": now, "question": q.pk,
                                  "user": user.pk, "response": Jsonb(cleaned),
                                  "snapshot": Jsonb(snap) if q.personal else None, "score": score,
                                  "role": Role.STUDENT, "session": session_key})
            row = cur.fetchone()
    if row is not None:
        transaction.on_commit(lambda: push.counts_soon(live_id, q.pk))
        return Response(pk=row[0], question=q, user=user, response=cleaned, score=score,
                        snapshot=snap if q.personal else None, answered_at=now), True
    return _not_stored(live_id, user, q, cleaned, now, session_key)


def _not_stored(live_id: int, user, q: LiveQuestion, cleaned: dict, now, session_key) -> tuple[Response, bool]:
    """Why _INSERT stored nothing: a repeat of the stored answer (fine), a different second answer,
    a closed question, a student who has not joined or is no longer in the course, a login that
    has ended."""
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.models import Session

    if session_key is not None and not Session.objects.filter(session_key=session_key, expire_date__gt=now).exists():
        raise LiveError("You are logged out: log in again, then reload this page.", 401)
    if not get_user_model().objects.filter(pk=user.pk, is_active=True).exists():
        raise LiveError("You are logged out: log in again, then reload this page.", 401)
    live = LiveSession.objects.filter(pk=live_id).first()
    if live is None:
        raise LiveError("This live quiz does not exist.", 404)
    if not Membership.objects.filter(course_id=live.course_id, user=user, role=Role.STUDENT).exists():
        raise LiveError("Only the course's students answer.", 403)
    if not Participant.objects.filter(live_id=live_id, user=user).exists():
        raise LiveError("Join with the code on the screen first.", 403)
    existing = Response.objects.filter(question=q, user=user).first()
    if existing is not None:
        if existing.response == cleaned:
            return existing, False
        raise LiveError("You have already answered this question; your first answer counts.")
    if q.position != live.current or live.phase == Phase.ENDED:
        raise LiveError("This question is not open: the page now shows the current one.")
    raise LiveError("Too late: the question was closed before your answer arrived.")


# --------------------------------------------------------------------------- what the screens show
def _public_question(snap: dict, q: LiveQuestion) -> dict:
    """The question as a phone sees it: no answer key."""
    out = {"id": q.pk, "position": q.position, "kind": q.kind, "personal": q.personal,
           "text_html": snap["text_html"], "unit": snap.get("unit", "")}
    if q.kind in ("single", "multiple"):
        out["choices"] = [{"id": c["id"], "html": c["html"], "letter": LETTERS[i % 26]}
                          for i, c in enumerate(snap["choices"])]
    return out


def public_state(live: LiveSession, now=None) -> dict:
    """What every phone and screen of the session shows; ``question`` has no answer key, and for
    personal questions its numbers are an example (each phone gets its own, personal_state)."""
    now = now or timezone.now()
    phase = _effective_phase(live, now)
    n = live.questions.count()
    state = {"type": "state", "live": live.pk, "version": live.version, "phase": phase,
             "position": live.current, "total": n, "question": None, "closes_in": None,
             "title": live.title, "ended": phase == Phase.ENDED}
    if phase == Phase.OPEN and live.closes_at:
        state["closes_in"] = max(0.0, round((live.closes_at - now).total_seconds(), 1))
    if live.current >= 0 and phase != Phase.ENDED:
        q = live.questions.get(position=live.current)
        state["question"] = _public_question(q.snapshot, q)
        if phase == Phase.REVEALED and not q.personal:
            state["correct_html"] = bank.correct_answer_text(q.snapshot)
            if q.kind in ("single", "multiple"):
                state["correct_ids"] = [c["id"] for c in q.snapshot["choices"] if c["correct"]]
    return state


def personal_state(live: LiveSession, user) -> dict:
    """public_state plus this student's own question (their numbers), whether they joined and their
    answer to the current question (and after reveal, whether it was right)."""
    state = public_state(live)
    state["joined"] = Participant.objects.filter(live=live, user=user).exists()
    state["answered"] = None
    if state["question"] is not None:
        q = live.questions.get(position=live.current)
        snap = _student_snapshot(q, user.pk)
        if q.personal:
            state["question"] = _public_question(snap, q)
        mine = Response.objects.filter(question=q, user=user).first()
        if mine is not None:
            state["answered"] = {"text": response_text(snap, mine.response)}
            if state["phase"] == Phase.REVEALED:
                state["answered"]["correct"] = mine.score >= 0.999
                state["answered"]["score"] = mine.score
        if state["phase"] == Phase.REVEALED and q.personal:
            state["correct_html"] = bank.correct_answer_text(snap)
    return state


def answer_text(row: Response) -> str:
    """A stored answer as its student's phone shows it ("Answer received: B")."""
    q = row.question
    return response_text(row.snapshot or q.snapshot, row.response)


def response_text(snap: dict, response: dict) -> str:
    """An answer as plain text (CSV, the phone's "your answer")."""
    kind = snap["type"]
    letters = {c["id"]: LETTERS[i % 26] for i, c in enumerate(snap.get("choices", []))}
    if kind == "single":
        return letters.get(response.get("choice"), "?")
    if kind == "multiple":
        return ", ".join(letters.get(c, "?") for c in response.get("choices", [])) or "(none)"
    if kind == "truefalse":
        return "True" if response.get("value") else "False"
    if kind == "numeric":
        return str(response.get("raw", response.get("value")))
    if kind == "short":
        return str(response.get("text", ""))
    return ""


def counts(live: LiveSession, question: LiveQuestion | None = None) -> dict:
    joined = Participant.objects.filter(live=live).count()
    if question is None and live.current >= 0:
        question = live.questions.filter(position=live.current).first()
    answered = Response.objects.filter(question=question).count() if question is not None else 0
    return {"type": "counts", "live": live.pk, "question": question.pk if question else None,
            "position": question.position if question else -1, "answered": answered, "joined": joined}


def distribution(q: LiveQuestion) -> dict:
    """The answers of one question, with nothing about who gave them: bars per choice, a histogram
    for numbers (the correct range marked), the most common short answers, or for personal
    questions the share correct."""
    rows = list(Response.objects.filter(question=q).values_list("response", "score"))
    n = len(rows)
    out = {"question": q.pk, "kind": q.kind, "n": n, "personal": q.personal,
           "correct_share": (sum(1 for _, s in rows if s >= 0.999) / n) if n else None}
    snap = q.snapshot
    if q.kind in ("single", "multiple", "truefalse"):
        if q.kind == "truefalse":
            options = [("true", "True", snap["answer"] is True), ("false", "False", snap["answer"] is False)]
            tally = Counter("true" if r.get("value") else "false" for r, _ in rows)
        else:
            options = [(c["id"], f'{LETTERS[i % 26]}. {c["html"]}', c["correct"]) for i, c in enumerate(snap["choices"])]
            tally = Counter()
            for r, _ in rows:
                tally.update([r["choice"]] if q.kind == "single" else r.get("choices", []))
        out["bars"] = [{"id": oid, "label_html": label, "count": tally.get(oid, 0), "correct": ok}
                       for oid, label, ok in options]
    elif q.kind == "numeric":
        values = sorted(float(r["value"]) for r, _ in rows)
        out["histogram"] = _histogram(values, None if q.personal else snap["answers"])
    elif q.kind == "short":
        tally = Counter()
        shown = {}
        for r, _ in rows:
            key = bank.normalise_text(r.get("text", ""))
            tally[key] += 1
            shown.setdefault(key, r.get("text", "").strip()[:80])
        out["top"] = [{"text": html.escape(shown[k]), "count": c} for k, c in tally.most_common(5)]
    return out


def _histogram(values: list[float], answers: list[dict] | None, bins: int = 10) -> dict:
    ranges = []
    for a in answers or []:
        if a.get("weight", 0) < 1.0:
            continue
        if "min" in a:
            ranges.append((a["min"], a["max"]))
        else:
            tol = max(a["tolerance"], a["rel_tolerance"] * abs(a["value"]))
            ranges.append((a["value"] - tol, a["value"] + tol))
    if not values:
        return {"bins": [], "correct": [list(r) for r in ranges]}
    lo, hi = values[0], values[-1]
    for a, b in ranges:  # the correct range is always on the axis
        lo, hi = min(lo, a), max(hi, b)
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    width = (hi - lo) / bins
    counts_ = [0] * bins
    for v in values:
        counts_[min(bins - 1, int((v - lo) / width))] += 1
    out = []
    for i, c in enumerate(counts_):
        a, b = lo + i * width, lo + (i + 1) * width
        hit = any(ra <= b and rb >= a for ra, rb in ranges)
        out.append({"from": _fmt(a), "to": _fmt(b), "count": c, "correct": hit})
    return {"bins": out, "correct": [[_fmt(a), _fmt(b)] for a, b in ranges]}


def _fmt(v: float) -> str:
    if not math.isfinite(v):
        return str(v)
    return f"{v:.4g}"


def staff_state(live: LiveSession) -> dict:
    """public_state plus the live counts, the answer key after reveal and, once closed, the distribution."""
    state = public_state(live)
    c = counts(live)
    state.update(answered=c["answered"], joined=c["joined"], code=live.code)
    if live.current >= 0 and state["phase"] in (Phase.CLOSED, Phase.REVEALED):
        q = live.questions.get(position=live.current)
        state["distribution"] = distribution(q)
        state["distribution"]["revealed"] = state["phase"] == Phase.REVEALED
        if not q.personal:
            state["correct_html"] = bank.correct_answer_text(q.snapshot)
    return state


def results(live: LiveSession) -> list[dict]:
    """Every question with its distribution (the results page, shown again after the lecture)."""
    out = []
    for q in live.questions.all():
        out.append({"q": q, "public": _public_question(q.snapshot, q), "opened": q.opened_at is not None,
                    "dist": distribution(q), "correct_html": bank.correct_answer_text(q.snapshot)})
    return out


def export_rows(live: LiveSession) -> list[list]:
    """One row per student of the course (joined or not) and question: the CSV export."""
    questions = list(live.questions.all())
    members = (Membership.objects.filter(course=live.course).students().select_related("user")
               .order_by("user__username"))
    joined = dict(Participant.objects.filter(live=live).values_list("user_id", "joined_at"))
    answers = {(r.question_id, r.user_id): r for r in Response.objects.filter(question__live=live)}
    header = ["username", "name", "joined_at"]
    for q in questions:
        header += [f"Q{q.position + 1} {q.key} answer", f"Q{q.position + 1} score"]
    header += ["answered", "score", "max"]
    table = [header]
    for m in members:
        u = m.user
        row = [u.username, u.get_full_name(), joined[u.id].isoformat() if u.id in joined else ""]
        answered, total = 0, 0.0
        for q in questions:
            r = answers.get((q.pk, u.id))
            if r is None:
                row += ["", ""]
                continue
            answered += 1
            total += r.score
            row += [response_text(r.snapshot or q.snapshot, r.response), round(r.score, 4)]
        row += [answered, round(total, 4), len(questions)]
        table.append(row)
    return table

