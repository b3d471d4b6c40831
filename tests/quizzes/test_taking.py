"""Taking a quiz through the views: start, autosave, reload, submit, deadlines, and every refusal."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from courseplatform.quizzes import services
from courseplatform.quizzes.models import Attempt, AttemptQuestion

from .conftest import item_by_key, right_answers

pytestmark = pytest.mark.django_db


def url(name, course, *args):
    return reverse(f"quizzes:{name}", args=[course.slug, *args])


def start(client, course, quiz):
    resp = client.post(url("start", course, quiz.slug))
    assert resp.status_code == 302, resp.content
    return Attempt.objects.filter(quiz=quiz).order_by("-pk").first()


def save(client, course, attempt, item, values, htmx=True):
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    return client.post(url("answer", course, attempt.pk, item.pk), {f"q{item.pk}": values}, **headers)


# --------------------------------------------------------------------------- the happy path
def test_student_takes_quiz_with_autosave_reload_and_score(course, quiz, student, client_for):
    c = client_for(student)
    page = c.get(url("detail", course, quiz.slug))
    assert page.status_code == 200 and "Start quiz" in page.content.decode()
    attempt = start(c, course, quiz)
    assert attempt.number == 1 and attempt.is_open
    assert attempt.deadline == attempt.started_at + timedelta(minutes=10)
    take = c.get(url("take", course, attempt.pk)).content.decode()
    assert 'id="countdown"' in take and "katex.min.js" in take and "\\begin{bmatrix}" in take
    answers = right_answers(attempt)
    for item in attempt.items.all():
        resp = save(c, course, attempt, item, answers[f"q{item.pk}"])
        assert resp.status_code == 200 and "Saved" in resp.content.decode()
    # A reload shows every saved answer.
    again = c.get(url("take", course, attempt.pk)).content.decode()
    num = item_by_key(attempt, "num")
    assert f'name="q{num.pk}" value="64.0"' in again
    single = item_by_key(attempt, "single")
    assert f'value="{answers[f"q{single.pk}"][0]}" checked' in again
    resp = c.post(url("submit", course, attempt.pk))
    assert resp.status_code == 302 and resp.url == url("result", course, attempt.pk)
    attempt.refresh_from_db()
    assert attempt.state == "submitted" and attempt.score == attempt.max_score == 8
    result = c.get(url("result", course, attempt.pk)).content.decode()
    assert 'data-testid="score">8 <span>/ 8 points (100%)' in result
    assert "Explanation." in result and "768/12" in result  # review = immediately


def test_submit_saves_answers_still_in_the_form(course, quiz, student, client_for):
    c = client_for(student)
    attempt = start(c, course, quiz)
    num = item_by_key(attempt, "num")
    c.post(url("submit", course, attempt.pk), {f"q{num.pk}": "64"})
    assert AttemptQuestion.objects.get(pk=num.pk).score == 2


def test_submit_with_a_bad_answer_is_not_submitted(course, quiz, student, client_for):
    c = client_for(student)
    attempt = start(c, course, quiz)
    num = item_by_key(attempt, "num")
    resp = c.post(url("submit", course, attempt.pk), {f"q{num.pk}": "sixty-four"}, follow=True)
    assert "is not a number" in resp.content.decode() and "Not submitted yet" in resp.content.decode()
    attempt.refresh_from_db()
    assert attempt.is_open


def test_choices_and_questions_shuffled_per_student_and_stable(course, make_quiz, student, other_student, make_user,
                                                              client_for):
    from courseplatform.courses.models import Membership

    quiz = make_quiz()
    orders = set()
    users = [student, other_student] + [make_user(f"s{i}") for i in range(6)]
    for u in users[2:]:
        Membership.objects.create(course=course, user=u, role="student")
    for u in users:
        a = services.start_attempt(quiz, u)
        orders.add(tuple(a.items.order_by("position").values_list("question__key", flat=True)))
    assert len(orders) > 1
    a = Attempt.objects.get(quiz=quiz, student=student)
    import re

    def order(page):
        return re.findall(r'name="(q\d+)" value="([^"]*)"', page)

    first = order(client_for(student).get(url("take", course, a.pk)).content.decode())
    second = order(client_for(student).get(url("take", course, a.pk)).content.decode())
    assert first == second and len(first) > 8


def test_parameters_differ_between_students_and_are_graded_per_student(course, quiz, student, other_student):
    a1 = services.start_attempt(quiz, student)
    a2 = services.start_attempt(quiz, other_student)
    p1, p2 = item_by_key(a1, "param"), item_by_key(a2, "param")
    assert p1.snapshot["params"] != p2.snapshot["params"]
    v1 = p1.snapshot["answers"][0]["value"]
    services.save_answer(a1.pk, p1.pk, {"value": [repr(v1)]})
    services.save_answer(a2.pk, p2.pk, {"value": [repr(v1)]})  # copying a neighbour's answer
    services.submit_attempt(a1.pk)
    services.submit_attempt(a2.pk)
    assert AttemptQuestion.objects.get(pk=p1.pk).score == 2
    assert AttemptQuestion.objects.get(pk=p2.pk).score == 0


def test_parameters_are_the_same_in_a_second_attempt(course, quiz, student):
    a1 = services.start_attempt(quiz, student)
    services.submit_attempt(a1.pk)
    a2 = services.start_attempt(quiz, student)
    assert a2.number == 2
    assert item_by_key(a1, "param").snapshot["params"] == item_by_key(a2, "param").snapshot["params"]


# --------------------------------------------------------------------------- bad input
def test_non_number_gets_a_message_not_a_zero(course, quiz, student, client_for):
    c = client_for(student)
    attempt = start(c, course, quiz)
    num = item_by_key(attempt, "num")
    save(c, course, attempt, num, "64")
    resp = save(c, course, attempt, num, "abc")
    assert "is not a number" in resp.content.decode()
    assert AttemptQuestion.objects.get(pk=num.pk).response == {"raw": "64", "value": 64.0}  # nothing lost
    plain = save(c, course, attempt, num, "abc", htmx=False)
    assert plain.status_code == 400
    for ok in ("0.5", "5e-1", "1/2"):
        assert "Saved" in save(c, course, attempt, num, ok).content.decode()
        assert AttemptQuestion.objects.get(pk=num.pk).response["value"] == 0.5


def test_tampered_choice_id_is_refused(course, quiz, student, client_for):
    c = client_for(student)
    attempt = start(c, course, quiz)
    single = item_by_key(attempt, "single")
    resp = save(c, course, attempt, single, "zz")
    assert "not part of this question" in resp.content.decode()
    assert AttemptQuestion.objects.get(pk=single.pk).response is None
    multi = item_by_key(attempt, "multi")
    assert "not part of this question" in save(c, course, attempt, multi, ["t5", "nope"]).content.decode()


def test_answer_to_a_question_not_in_the_attempt(course, quiz, student, other_student, client_for):
    c = client_for(student)
    mine = start(c, course, quiz)
    theirs = services.start_attempt(quiz, other_student)
    foreign_item = theirs.items.first()
    resp = c.post(url("answer", course, mine.pk, foreign_item.pk), {f"q{foreign_item.pk}": "a"})
    assert resp.status_code == 400 and "not part of your attempt" in resp.content.decode()
    assert AttemptQuestion.objects.get(pk=foreign_item.pk).response is None
    resp = c.post(url("answer", course, mine.pk, 999999), {"q999999": "a"})
    assert resp.status_code == 400


def test_another_students_attempt_is_invisible(course, quiz, student, other_student, client_for):
    theirs = services.start_attempt(quiz, other_student)
    item = theirs.items.first()
    c = client_for(student)
    assert c.get(url("take", course, theirs.pk)).status_code == 404
    assert c.post(url("answer", course, theirs.pk, item.pk), {f"q{item.pk}": "a"}).status_code == 404
    assert c.post(url("submit", course, theirs.pk)).status_code == 404
    services.submit_attempt(theirs.pk)
    assert c.get(url("result", course, theirs.pk)).status_code == 404
    theirs.refresh_from_db()
    assert AttemptQuestion.objects.get(pk=item.pk).response is None


def test_double_submit_is_idempotent(course, quiz, student, client_for):
    c = client_for(student)
    attempt = start(c, course, quiz)
    data = right_answers(attempt)
    first = c.post(url("submit", course, attempt.pk), data)
    attempt.refresh_from_db()
    finished, score = attempt.finished_at, attempt.score
    second = c.post(url("submit", course, attempt.pk), data, follow=True)
    assert first.status_code == 302 and "already submitted" in second.content.decode()
    attempt.refresh_from_db()
    assert (attempt.finished_at, attempt.score, attempt.state) == (finished, score, "submitted")
    assert Attempt.objects.filter(quiz=quiz, student=student).count() == 1


def test_two_tabs_second_tab_cannot_change_answers_after_submit(course, quiz, student, client_for):
    tab1, tab2 = client_for(student), client_for(student)
    attempt = start(tab1, course, quiz)
    tab1.post(url("submit", course, attempt.pk))
    num = item_by_key(attempt, "num")
    resp = save(tab2, course, attempt, num, "64")
    assert "closed" in resp.content.decode() and resp["HX-Redirect"] == url("result", course, attempt.pk)
    assert AttemptQuestion.objects.get(pk=num.pk).response is None


def test_start_twice_resumes_the_open_attempt(course, quiz, student, client_for):
    c = client_for(student)
    a1 = start(c, course, quiz)
    a2 = start(c, course, quiz)
    assert a1.pk == a2.pk and Attempt.objects.filter(quiz=quiz, student=student).count() == 1


def test_one_open_attempt_is_a_database_rule(course, quiz, student):
    from django.db import IntegrityError, transaction

    services.start_attempt(quiz, student)
    with pytest.raises(IntegrityError), transaction.atomic():
        Attempt.objects.create(quiz=quiz, student=student, number=9)


def test_attempt_limit(course, quiz, student, client_for):
    c = client_for(student)
    for _ in range(2):
        a = start(c, course, quiz)
        c.post(url("submit", course, a.pk))
    resp = c.post(url("start", course, quiz.slug), follow=True)
    assert "used all 2 attempt(s)" in resp.content.decode()
    assert Attempt.objects.filter(quiz=quiz, student=student).count() == 2


def test_quiz_not_open_yet_or_closed(course, quiz, student, client_for):
    c = client_for(student)
    quiz.opens_at = timezone.now() + timedelta(hours=2)
    quiz.save()
    assert "opens at" in c.post(url("start", course, quiz.slug), follow=True).content.decode()
    quiz.opens_at, quiz.closes_at = timezone.now() - timedelta(days=2), timezone.now() - timedelta(minutes=1)
    quiz.save()
    assert "has closed" in c.post(url("start", course, quiz.slug), follow=True).content.decode()
    assert not Attempt.objects.exists()


def test_late_answer_is_refused_and_attempt_closes_itself(course, quiz, student, client_for):
    c = client_for(student)
    attempt = start(c, course, quiz)
    num = item_by_key(attempt, "num")
    assert "Saved" in save(c, course, attempt, num, "64").content.decode()
    Attempt.objects.filter(pk=attempt.pk).update(deadline=timezone.now() - timedelta(seconds=1))
    resp = save(c, course, attempt, item_by_key(attempt, "tf"), "true")
    assert "Time is up" in resp.content.decode() and resp["HX-Redirect"]
    attempt.refresh_from_db()
    assert attempt.state == "expired" and attempt.score == 2  # only what was saved in time
    assert AttemptQuestion.objects.get(pk=item_by_key(attempt, "tf").pk).response is None


def test_late_submit_closes_with_saved_answers_only(course, quiz, student, client_for):
    c = client_for(student)
    attempt = start(c, course, quiz)
    data = right_answers(attempt)
    Attempt.objects.filter(pk=attempt.pk).update(deadline=timezone.now() - timedelta(seconds=5))
    resp = c.post(url("submit", course, attempt.pk), data, follow=True)
    assert "Time was up" in resp.content.decode() or "already submitted" in resp.content.decode()
    attempt.refresh_from_db()
    assert attempt.state == "expired" and attempt.score == 0


def test_deadline_is_min_of_limit_and_close(course, quiz, student):
    quiz.closes_at = timezone.now() + timedelta(minutes=3)
    quiz.save()
    a = services.start_attempt(quiz, student)
    assert a.deadline == quiz.closes_at


def test_browser_gone_attempt_closed_lazily_and_by_command(course, quiz, student, other_student, client_for):
    from django.core.management import call_command

    a1 = services.start_attempt(quiz, student)
    a2 = services.start_attempt(quiz, other_student)
    Attempt.objects.filter(pk__in=[a1.pk, a2.pk]).update(deadline=timezone.now() - timedelta(minutes=1))
    # Lazily: the student's next page view closes it.
    client_for(student).get(url("index", course))
    a1.refresh_from_db()
    assert a1.state == "expired" and a1.finished_at is not None and a1.score == 0
    # The periodic sweeper (task / command) closes the other.
    call_command("close_overdue_attempts")
    a2.refresh_from_db()
    assert a2.state == "expired"
    from courseplatform.quizzes.tasks import close_overdue_attempts

    assert close_overdue_attempts() == 0


def test_beat_schedule_registered():
    from courseplatform.celery import app

    entry = app.conf.beat_schedule["quizzes-close-overdue-attempts"]
    assert entry["task"] == "courseplatform.quizzes.tasks.close_overdue_attempts"


def test_extension_adds_time_and_updates_an_open_attempt(course, quiz, student, instructor, client_for):
    a = services.start_attempt(quiz, student)
    old = a.deadline
    c = client_for(instructor)
    resp = c.post(url("extensions", course, quiz.slug), {"student": student.pk, "extra_minutes": 15, "reason": "NTA"})
    assert resp.status_code == 302
    a.refresh_from_db()
    assert a.deadline == old + timedelta(minutes=15)
    bad = c.post(url("extensions", course, quiz.slug), {"student": student.pk, "extra_minutes": 0})
    assert "Give extra minutes" in bad.content.decode()


def test_extension_later_close_lets_a_student_start(course, quiz, student, instructor, client_for):
    quiz.closes_at = timezone.now() - timedelta(minutes=5)
    quiz.save()
    c = client_for(instructor)
    later = (timezone.localtime() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    c.post(url("extensions", course, quiz.slug), {"student": student.pk, "extra_minutes": 0, "closes_at": later})
    a = services.start_attempt(quiz, student)
    assert a.is_open


# --------------------------------------------------------------------------- review policy
def test_review_after_close_hides_answers_until_close(course, quiz, student, client_for):
    quiz.review = "after_close"
    quiz.save()
    c = client_for(student)
    a = start(c, course, quiz)
    c.post(url("submit", course, a.pk))
    page = c.get(url("result", course, a.pk)).content.decode()
    assert 'data-testid="score"' in page and "open when the quiz closes" in page and "Explanation." not in page
    quiz.closes_at = timezone.now() - timedelta(seconds=1)
    quiz.save()
    assert "Explanation." in c.get(url("result", course, a.pk)).content.decode()


def test_review_never(course, quiz, student, client_for):
    quiz.review = "never"
    quiz.closes_at = timezone.now() + timedelta(seconds=30)
    quiz.save()
    c = client_for(student)
    a = start(c, course, quiz)
    c.post(url("submit", course, a.pk))
    quiz.closes_at = timezone.now() - timedelta(seconds=1)
    quiz.save()
    page = c.get(url("result", course, a.pk)).content.decode()
    assert "scores only" in page and "Explanation." not in page


# --------------------------------------------------------------------------- roles
def test_role_refusals(course, quiz, student, ta, instructor, outsider, client_for):
    s, t, i, o = (client_for(u) for u in (student, ta, instructor, outsider))
    for name in ("stats", "attempts"):
        assert s.get(url(name, course, quiz.slug)).status_code == 403
        assert t.get(url(name, course, quiz.slug)).status_code == 200
        assert o.get(url(name, course, quiz.slug)).status_code == 404
    for name in ("settings", "extensions"):
        assert t.get(url(name, course, quiz.slug)).status_code == 403
        assert i.get(url(name, course, quiz.slug)).status_code == 200
    q = quiz.questions.first()
    assert t.get(url("edit_question", course, quiz.slug, q.pk)).status_code == 403
    assert t.post(url("regrade", course, quiz.slug)).status_code == 403
    assert t.post(url("resync", course)).status_code == 403
    assert o.get(url("detail", course, quiz.slug)).status_code == 404
    assert o.get(url("index", course)).status_code == 404
    assert t.post(url("start", course, quiz.slug)).status_code == 403  # staff do not take attempts


def test_other_course_quiz_is_not_reachable(course, other_course, make_quiz, student, outsider, client_for):
    foreign = make_quiz(target=other_course, opens_at=None, closes_at=None)
    c = client_for(student)
    assert c.get(reverse("quizzes:detail", args=[course.slug, foreign.slug])).status_code in (200, 404)
    # Same slug in our course does not exist; through the other course's URL the student is not a member.
    assert c.get(reverse("quizzes:detail", args=[other_course.slug, foreign.slug])).status_code == 404
    their = services.start_attempt(foreign, outsider)
    assert c.get(url("result", course, their.pk)).status_code == 404
    assert c.get(url("take", course, their.pk)).status_code == 404


def test_unpublished_quiz_hidden_from_students(course, quiz, student, ta, client_for):
    quiz.published = False
    quiz.save()
    assert client_for(student).get(url("detail", course, quiz.slug)).status_code == 404
    assert quiz.title not in client_for(student).get(url("index", course)).content.decode()
    assert client_for(ta).get(url("detail", course, quiz.slug)).status_code == 200


def test_staff_can_review_any_attempt_of_their_course(course, quiz, student, ta, client_for):
    a = services.start_attempt(quiz, student)
    services.submit_attempt(a.pk)
    page = client_for(ta).get(url("result", course, a.pk)).content.decode()
    assert "Alice Adams" in page and "Explanation." in page


def test_anonymous_is_sent_to_login(course, quiz, client):
    resp = client.get(url("index", course))
    assert resp.status_code == 302 and "/accounts/login/" in resp.url


def test_oversized_and_malformed_answers(course, quiz, student, client_for):
    c = client_for(student)
    attempt = start(c, course, quiz)
    short = item_by_key(attempt, "short")
    assert "under 500 characters" in save(c, course, attempt, short, "x" * 501).content.decode()
    num = item_by_key(attempt, "num")
    assert "too long" in save(c, course, attempt, num, "1" * 65).content.decode()
    assert "Only one answer" in save(c, course, attempt, num, ["1", "2"]).content.decode()
    assert c.get(url("answer", course, attempt.pk, num.pk)).status_code == 405
    assert AttemptQuestion.objects.get(pk=short.pk).response is None
    assert AttemptQuestion.objects.get(pk=num.pk).response is None
