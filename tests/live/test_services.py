"""The live quiz without push: joining, pacing, answers (and every bad answer), results, CSV,
gradebook and attendance, through the real views (Django's test client)."""
from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from courseplatform.courses.models import Attendance, LectureSession
from courseplatform.live import services
from courseplatform.live.models import JoinFailure, LiveSession, Participant, Response

pytestmark = pytest.mark.django_db
JSON = {"HTTP_ACCEPT": "application/json"}


def _join(client, code):
    return client.post(reverse("live-join"), {"code": code})


def _act(client, live, action, **extra):
    live.refresh_from_db()
    data = {"action": action, "version": live.version, **extra}
    return client.post(reverse("live:action", args=[live.course.slug, live.pk]), data, **JSON)


def _answer(client, live, question, **data):
    return client.post(reverse("live:answer", args=[live.course.slug, live.pk]),
                       {"question": question.pk if hasattr(question, "pk") else question, **data}, **JSON)


def _q(live, position):
    return live.questions.get(position=position)


def _choice(q, text):
    return next(c["id"] for c in q.snapshot["choices"] if c["html"] == text)


def test_join_marks_attendance_and_the_phone_page_opens(client_for, live, student, lecture):
    c = client_for(student)
    r = _join(c, live.code.lower())  # typed in lower case: still the code
    assert r.status_code == 302 and r["Location"] == reverse("live:phone", args=[live.course.slug, live.pk])
    assert Participant.objects.filter(live=live, user=student).exists()
    att = Attendance.objects.get(session=lecture, user=student)
    assert att.status == "present" and att.marked_by is None
    page = c.get(r["Location"])
    assert page.status_code == 200 and b"live-initial" in page.content
    # the attendance page shows the mark as coming from the live quiz
    staff = client_for(live.created_by)
    r = staff.get(reverse("courses:session_attendance", args=[live.course.slug, lecture.pk]))
    assert b'data-testid="live-joined"' in r.content


def test_join_without_attendance_option_leaves_attendance_alone(client_for, course, lecture, live_quiz, instructor,
                                                                 student):
    live = services.start(course, lecture, list(live_quiz.active_questions()), title="t", user=instructor,
                          mark_attendance=False)
    assert _join(client_for(student), live.code).status_code == 302
    assert not Attendance.objects.filter(session=lecture, user=student).exists()


def test_code_cannot_be_guessed_into_another_course(client_for, live, outsider, make_user, other_course):
    """Eve (another course) gets the same answer as for a code that does not exist, and after ten
    wrong codes even the right one is refused for a while."""
    eve = client_for(outsider)
    r = _join(eve, live.code)
    assert r.status_code == 404 and b"No live quiz with that code" in r.content
    assert not Participant.objects.filter(live=live, user=outsider).exists()
    for i in range(9):
        _join(eve, f"ZZZZZ{i}")
    assert JoinFailure.objects.filter(user=outsider).count() == 10
    r = _join(eve, live.code)
    assert r.status_code == 429 and b"Too many wrong codes" in r.content
    # a student of the course joins fine: the limit is per user
    assert len(services.CODE_ALPHABET) ** services.CODE_LENGTH > 10 ** 9


def test_rate_limit_applies_to_members_too(client_for, live, student):
    c = client_for(student)
    for i in range(10):
        assert _join(c, f"QQQQQ{i}").status_code == 404
    r = _join(c, live.code)
    assert r.status_code == 429 and not Participant.objects.filter(live=live, user=student).exists()
    JoinFailure.objects.filter(user=student).update(at=timezone.now() - timedelta(minutes=11))
    assert _join(c, live.code).status_code == 302


def test_staff_and_ended_sessions_cannot_be_joined(client_for, live, instructor, student):
    assert _join(client_for(instructor), live.code).status_code == 404
    services.control(live.pk, "end", version=None)
    assert _join(client_for(student), live.code).status_code == 404


def test_whole_flow_with_scores_counts_and_distribution(client_for, live, instructor, student, other_student):
    prof, alice, bob = client_for(instructor), client_for(student), client_for(other_student)
    _join(alice, live.code)
    _join(bob, live.code)
    r = _act(prof, live, "next")
    assert r.status_code == 200 and r.json()["state"]["phase"] == "open"
    q0 = _q(live, 0)
    right, wrong = _choice(q0, "12"), _choice(q0, "8")
    r = _answer(alice, live, q0, choice=right)
    assert r.status_code == 200 and r.json()["ok"] and r.json()["created"]
    assert Response.objects.get(question=q0, user=student).score == 1.0  # stored before "received"
    assert _answer(bob, live, q0, choice=wrong).status_code == 200
    live.refresh_from_db()
    st = services.staff_state(live)
    assert (st["answered"], st["joined"]) == (2, 2)
    assert "distribution" not in st  # not while the question is open
    assert _act(prof, live, "close").status_code == 200
    live.refresh_from_db()
    st = services.staff_state(live)
    bars = {b["id"]: b["count"] for b in st["distribution"]["bars"]}
    assert bars[right] == 1 and bars[wrong] == 1 and st["distribution"]["correct_share"] == 0.5
    assert "correct_ids" not in services.public_state(live)  # not before reveal
    assert _act(prof, live, "reveal").status_code == 200
    live.refresh_from_db()
    assert services.public_state(live)["correct_ids"] == [right]
    mine = alice.get(reverse("live:me", args=[live.course.slug, live.pk])).json()
    assert mine["answered"]["correct"] is True and mine["answered"]["text"] == "B"
    assert _act(prof, live, "next").status_code == 200
    live.refresh_from_db()
    assert live.current == 1 and live.phase == "open"


def test_nothing_on_the_projector_names_a_student(client_for, live, instructor, student, other_student):
    for user, text in ((student, "Alice Adams"), (other_student, "CLS")):
        _join(client_for(user), live.code)
    prof = client_for(instructor)
    for _ in range(6):
        _act(prof, live, "next")
        live.refresh_from_db()
        q = _q(live, live.current)
        if q.kind == "short":
            _answer(client_for(student), live, q, text="alice")  # a student's own name as the answer text
            _answer(client_for(other_student), live, q, text="CLS")
        _act(prof, live, "close")
        _act(prof, live, "reveal")
    live.refresh_from_db()
    blob = json.dumps(services.staff_state(live)) + prof.get(
        reverse("live:projector", args=[live.course.slug, live.pk])).content.decode()
    for name in ("bob", "Brown", "Adams", "alice@example.edu", str(student.pk) + '"'):
        assert name not in blob


def test_short_answers_are_grouped_for_the_screen(client_for, live, instructor, student, other_student, make_user,
                                                  course):
    from courseplatform.courses.models import Membership

    users = [student, other_student]
    for i in range(3):
        u = make_user(f"s{i}")
        Membership.objects.create(course=course, user=u, role="student")
        users.append(u)
    for u in users:
        _join(client_for(u), live.code)
    services.control(live.pk, "next", version=None)
    live.refresh_from_db()
    while _q(live, live.current).kind != "short":
        services.control(live.pk, "close", version=None)
        services.control(live.pk, "next", version=None)
        live.refresh_from_db()
    q = _q(live, live.current)
    for u, text in zip(users, ["[CLS]", "cls", "CLS", "SEP", "[cls]"]):
        assert _answer(client_for(u), live, q, text=text).status_code == 200
    services.control(live.pk, "close", version=None)
    dist = services.distribution(q)
    assert dist["top"][0]["count"] == 2 or dist["top"][0]["count"] >= 2
    assert sum(t["count"] for t in dist["top"]) == 5
    assert dist["correct_share"] == pytest.approx(4 / 5)


def test_per_student_numbers_are_drawn_and_graded_per_student(client_for, live, make_user, course):
    from courseplatform.courses.models import Membership

    users = []
    for i in range(6):
        u = make_user(f"p{i}")
        Membership.objects.create(course=course, user=u, role="student")
        users.append(u)
        _join(client_for(u), live.code)
    pos = next(q.position for q in live.questions.all() if q.personal)
    for _ in range(pos + 1):
        services.control(live.pk, "close", version=None) if live.phase == "open" else None
        services.control(live.pk, "next", version=None)
        live.refresh_from_db()
    q = _q(live, pos)
    texts, ok = set(), 0
    for i, u in enumerate(users):
        state = client_for(u).get(reverse("live:me", args=[course.slug, live.pk])).json()
        assert "answers" not in json.dumps(state["question"])  # no answer key on a phone
        texts.add(state["question"]["text_html"])
        s = services._student_snapshot(q, u.pk)["params"]["s"]
        value = s / 2 if i % 2 == 0 else s / 2 + 1  # half right with their own numbers
        assert _answer(client_for(u), live, q, value=str(value)).status_code == 200
    assert len(texts) > 1  # different numbers on different phones
    scores = sorted(Response.objects.filter(question=q).values_list("score", flat=True))
    assert scores == [0.0] * 3 + [1.0] * 3
    services.control(live.pk, "close", version=None)
    dist = services.distribution(q)
    assert dist["personal"] and dist["correct_share"] == 0.5
    assert all(r.snapshot and r.snapshot["params"]["s"] for r in Response.objects.filter(question=q))


# --------------------------------------------------------------------------- bad input
@pytest.fixture
def opened(client_for, live, student):
    _join(client_for(student), live.code)
    services.control(live.pk, "next", version=None)
    live.refresh_from_db()
    return live


def test_answer_sent_twice(client_for, opened, student):
    c, q = client_for(student), _q(opened, 0)
    right, wrong = _choice(q, "12"), _choice(q, "8")
    assert _answer(c, opened, q, choice=right).json()["created"] is True
    r = _answer(c, opened, q, choice=right)  # a retry whose "received" was lost
    assert r.status_code == 200 and r.json()["created"] is False and "already arrived" in r.json()["message"]
    r = _answer(c, opened, q, choice=wrong)  # a change of mind: the first answer counts
    assert r.status_code == 409 and "already answered" in r.json()["message"]
    assert list(Response.objects.filter(question=q).values_list("response", flat=True)) == [{"choice": right}]


def test_answer_after_closing_and_after_the_countdown(client_for, opened, student, other_student):
    q = _q(opened, 0)
    services.control(opened.pk, "close", version=None)
    r = _answer(client_for(student), opened, q, choice=_choice(q, "12"))
    assert r.status_code == 409 and "closed" in r.json()["message"] and r.json()["state"]["phase"] == "closed"
    services.control(opened.pk, "next", version=None)
    services.control(opened.pk, "countdown", version=None, seconds=5)
    LiveSession.objects.filter(pk=opened.pk).update(closes_at=timezone.now() - timedelta(seconds=1))
    r = _answer(client_for(student), opened, _q(opened, 1), choice=_q(opened, 1).snapshot["choices"][0]["id"])
    assert r.status_code == 409 and "closed" in r.json()["message"]
    assert not Response.objects.exists()


def test_answer_to_a_question_not_open_and_stale_page(client_for, opened, student):
    c = client_for(student)
    q1 = _q(opened, 1)  # the next one, not opened yet
    r = _answer(c, opened, q1, choice=q1.snapshot["choices"][0]["id"])
    assert r.status_code == 409 and "not open" in r.json()["message"]
    assert r.json()["state"]["question"]["id"] == _q(opened, 0).pk  # the phone is told what is open
    services.control(opened.pk, "close", version=None)
    services.control(opened.pk, "next", version=None)
    q0 = _q(opened, 0)  # a phone still showing the first question
    r = _answer(c, opened, q0, choice=_choice(q0, "12"))
    assert r.status_code == 409 and "not open" in r.json()["message"]
    assert not Response.objects.exists()


def test_answer_from_non_members_and_not_joined(client_for, opened, outsider, other_student, instructor):
    q = _q(opened, 0)
    data = {"choice": _choice(q, "12")}
    assert _answer(client_for(outsider), opened, q, **data).status_code == 404  # not in the course
    r = _answer(client_for(other_student), opened, q, **data)  # in the course, never joined
    assert r.status_code == 403 and "Join" in r.json()["message"]
    assert _answer(client_for(instructor), opened, q, **data).status_code == 403  # staff do not answer
    assert not Response.objects.exists()


@pytest.mark.parametrize("body", [
    {}, {"question": "abc", "choice": "x"}, {"question": "999999", "choice": "x"}, {"choice": "x"},
    {"question": "Q", "choice": "not-a-choice"}, {"question": "Q"}, {"question": "Q", "choice": ["a", "b"]},
    {"question": "Q", "value": "12"}, {"question": "Q", "choice": "x\x00y"},
])
def test_malformed_bodies_get_a_clear_answer(client_for, opened, student, body):
    q = _q(opened, 0)
    body = {k: (str(q.pk) if v == "Q" else v) for k, v in body.items()}
    r = client_for(student).post(reverse("live:answer", args=[opened.course.slug, opened.pk]), body, **JSON)
    assert r.status_code == 400 and r.json()["ok"] is False and r.json()["message"]
    assert not Response.objects.exists()


def test_numeric_and_short_bad_values(client_for, opened, student):
    c = client_for(student)
    for _ in range(3):
        services.control(opened.pk, "close", version=None)
        services.control(opened.pk, "next", version=None)
    opened.refresh_from_db()
    q = _q(opened, 3)
    assert q.kind == "numeric"
    for bad in ("sixty-four", "nan", "1/0", "9" * 100):
        r = _answer(c, opened, q, value=bad)
        assert r.status_code == 400, bad
    assert _answer(c, opened, q, value="64,2").status_code == 200  # a decimal comma is a number
    assert Response.objects.get(question=q).score == 1.0


def test_control_refuses_out_of_order_steps_and_stale_versions(client_for, live, instructor):
    prof = client_for(instructor)
    assert _act(prof, live, "reveal").status_code == 409
    assert _act(prof, live, "close").status_code == 409
    live.refresh_from_db()
    r = prof.post(reverse("live:action", args=[live.course.slug, live.pk]),
                  {"action": "next", "version": live.version - 1}, **JSON)
    assert r.status_code == 409 and "another window" in r.json()["message"]
    assert _act(prof, live, "next").status_code == 200
    assert _act(prof, live, "next").status_code == 409  # close first
    assert _act(prof, live, "countdown", seconds="1").status_code == 400
    assert _act(prof, live, "countdown", seconds="30").status_code == 200
    assert _act(prof, live, "bogus").status_code == 400
    r = prof.post(reverse("live:action", args=[live.course.slug, live.pk]), {"action": "next", "version": "x"})
    assert r.status_code == 302  # without JS: back to the control page with a message


# --------------------------------------------------------------------------- after
def _run_all(live, answers_for):
    """Open every question; answers_for(q) -> [(user, data)]; close each."""
    n = live.questions.count()
    for i in range(n):
        services.control(live.pk, "next", version=None)
        live.refresh_from_db()
        q = _q(live, i)
        for client, data in answers_for(q):
            assert _answer(client, live, q, **data).status_code == 200
        services.control(live.pk, "close", version=None)
    services.control(live.pk, "end", version=None)
    live.refresh_from_db()


def test_results_csv_and_gradebook(client_for, live, instructor, student, other_student, course):
    from courseplatform.gradebook.compute import build

    alice = client_for(student)
    _join(alice, live.code)

    def answers(q):
        if q.kind == "single":
            return [(alice, {"choice": _choice(q, "12")})]
        if q.kind == "truefalse":
            return [(alice, {"value": "false"})]
        return []

    _run_all(live, answers)
    prof = client_for(instructor)
    r = prof.get(reverse("live:results", args=[course.slug, live.pk]))
    assert r.status_code == 200 and b"Question 6" in r.content
    r = prof.get(reverse("live:results", args=[course.slug, live.pk]) + "?format=csv")
    rows = list(csv.reader(io.StringIO(r.content.decode())))
    by_user = {row[0]: row for row in rows[1:]}
    assert rows[0][:3] == ["username", "name", "joined_at"]
    assert by_user["alice"][3:5] == ["B", "1.0"] and by_user["alice"][-3:] == ["2", "1.0", "6"]
    assert by_user["bob"][2] == "" and by_user["bob"][-3:] == ["0", "0.0", "6"]
    # the gradebook: not counted until the instructor says so, then by the chosen rule
    assert not [i for i in build(course).items if i.key.startswith("live:")]
    r = prof.post(reverse("live:settings", args=[course.slug]), {"gradebook": "participation"})
    assert r.status_code == 302
    item = next(i for i in build(course).items if i.key == f"live:{live.pk}")
    assert item.category == "quizzes" and item.max_points == 6
    assert item.scores[student.pk] == 2 and item.scores[other_student.pk] == 0
    prof.post(reverse("live:settings", args=[course.slug]), {"gradebook": "correctness"})
    item = next(i for i in build(course).items if i.key == f"live:{live.pk}")
    assert item.scores[student.pk] == 1
    prof.post(reverse("live:settings", args=[course.slug]), {"gradebook": "both"})
    item = next(i for i in build(course).items if i.key == f"live:{live.pk}")
    assert item.scores[student.pk] == 1.5
    assert client_for(live.created_by).post(reverse("live:settings", args=[course.slug]),
                                            {"gradebook": "bogus"}).status_code == 302


def test_ta_may_run_but_not_change_settings(client_for, ta, live, course):
    c = client_for(ta)
    assert c.get(reverse("live:control", args=[course.slug, live.pk])).status_code == 200
    assert c.post(reverse("live:settings", args=[course.slug]), {"gradebook": "both"}).status_code == 403


def test_start_from_the_page(client_for, instructor, course, lecture, live_quiz):
    c = client_for(instructor)
    assert c.get(reverse("live:index", args=[course.slug])).status_code == 200
    r = c.post(reverse("live:start", args=[course.slug]), {"lecture": lecture.pk})
    assert r.status_code == 400 and b"Choose a quiz or pick questions" in r.content
    picked = list(live_quiz.active_questions().filter(key__in=["tf", "cls"]))
    r = c.post(reverse("live:start", args=[course.slug]),
               {"lecture": lecture.pk, "questions": [q.pk for q in picked], "mark_attendance": "on"})
    live = LiveSession.objects.get()
    assert r.status_code == 302 and [q.key for q in live.questions.all()] == ["tf", "cls"]
    assert len(live.code) == 6 and live.mark_attendance
    other = LectureSession.objects.create(course=course, date=timezone.localdate(), title="Other day")
    r = c.post(reverse("live:start", args=[course.slug]), {"lecture": other.pk, "quiz": live_quiz.pk})
    assert LiveSession.objects.count() == 2 and LiveSession.objects.first().questions.count() == 6


def test_qr_code_is_an_svg_of_the_join_url(client_for, instructor, live, course):
    r = client_for(instructor).get(reverse("live:qr", args=[course.slug, live.pk]))
    assert r.status_code == 200 and r["Content-Type"] == "image/svg+xml"
    body = r.content.decode()
    assert body.lstrip().startswith("<svg") and "<script" not in body and "<path" in body
