"""Leaderboard: ranking by the pack's metric, names as the instructor chooses, roles, sync from the pack."""
from __future__ import annotations

import pytest
from django.urls import reverse

from courseplatform.courses.models import Membership, Role
from courseplatform.submissions.leaderboard import board, pseudonym
from courseplatform.submissions.models import Submission
from courseplatform.submissions.sync import leaderboard_settings, sync_pack

pytestmark = pytest.mark.django_db


def graded(assignment, user, metrics, score=10, test_run=False, state="graded", **kw):
    return Submission.objects.create(
        assignment=assignment, student=user, sha256="0" * 64, blob="x", original_name="finetune.py", kind="py", size=1,
        state=state, score=score, max_score=10, is_test_run=test_run, result={"metrics": metrics, "tests": []}, **kw,
    )


@pytest.fixture
def board_setup(assignment, student, other_student, make_user, course, instructor):
    assignment.leaderboard_metric = "f1"
    assignment.save()
    third = make_user("carol", first_name="Carol", last_name="Third")
    Membership.objects.create(course=course, user=third, role=Role.STUDENT)
    other_student.first_name, other_student.last_name = "Olga", "Otherova"
    other_student.save()
    graded(assignment, student, {"f1": 0.80, "accuracy": 0.82})
    graded(assignment, student, {"f1": 0.70, "accuracy": 0.90})  # worse F1: not their best
    graded(assignment, other_student, {"f1": 0.91, "accuracy": 0.90})
    graded(assignment, third, {"f1": 0.80, "accuracy": 0.79})  # tie with student
    graded(assignment, third, {"f1": "NaN", "accuracy": 1.0})  # not a number: ignored
    graded(assignment, third, {"f1": None, "accuracy": 1.0})  # a NaN the task stored as null: ignored
    graded(assignment, third, {"f1": 0.99}, state="error")  # not graded: ignored
    graded(assignment, instructor, {"f1": 1.0}, test_run=True)  # staff test run: never ranked
    return assignment, third


def test_ranks_each_students_best_by_the_metric(board_setup, student, other_student, instructor):
    assignment, third = board_setup
    rows, columns = board(assignment, instructor, True)
    assert [(r.rank, r.user.username, r.value) for r in rows] == [
        (1, other_student.username, 0.91), (2, student.username, 0.80), (2, "carol", 0.80),
    ]
    assert columns == ["accuracy"] and rows[1].metrics == {"accuracy": 0.82}
    assignment.leaderboard_order = "asc"
    assignment.save()
    assert [r.user.username for r in board(assignment, instructor, True)[0]][0] == student.username


def test_students_see_pseudonyms_and_their_own_row(board_setup, client_for, student, other_student, instructor):
    assignment, third = board_setup
    r = client_for(student).get(reverse("submissions:leaderboard", args=[assignment.course.slug, assignment.slug]))
    page = r.content.decode()
    assert r.status_code == 200
    assert "You are ranked <strong>#2</strong> of 3" in page and 'class="me"' in page
    for secret in ("Olga", "Otherova", other_student.username, "Carol", "carol"):
        assert secret not in page
    assert pseudonym(assignment.pk, other_student.pk) in page and pseudonym(assignment.pk, third.pk) in page
    assert pseudonym(assignment.pk, other_student.pk) == pseudonym(assignment.pk, other_student.pk)  # stable
    # Staff see full names and usernames.
    staff_page = client_for(instructor).get(reverse("submissions:leaderboard", args=[assignment.course.slug, assignment.slug])).content.decode()
    assert "Olga Otherova" in staff_page and "carol" in staff_page
    # The instructor opts in to full names.
    assignment.leaderboard_names = "full"
    assignment.save()
    page = client_for(student).get(reverse("submissions:leaderboard", args=[assignment.course.slug, assignment.slug])).content.decode()
    assert "Olga Otherova" in page


def test_roles_and_assignments_without_a_leaderboard(board_setup, client_for, ta, outsider, student, course):
    assignment, _ = board_setup
    url = reverse("submissions:leaderboard", args=[course.slug, assignment.slug])
    assert client_for(ta).get(url).status_code == 200
    assert client_for(outsider).get(url).status_code == 404
    detail = client_for(student).get(reverse("submissions:detail", args=[course.slug, assignment.slug])).content
    assert b'id="leaderboard-link"' in detail
    assignment.released = False
    assignment.save()
    assert client_for(student).get(url).status_code == 404  # unreleased: students see nothing
    assignment.released, assignment.leaderboard_metric = True, ""
    assignment.save()
    assert client_for(student).get(url).status_code == 404
    assert client_for(ta).get(url).status_code == 404
    detail = client_for(student).get(reverse("submissions:detail", args=[course.slug, assignment.slug])).content
    assert b'id="leaderboard-link"' not in detail


def test_instructor_sets_the_leaderboard_in_settings(assignment, client_for, instructor, ta, course):
    url = reverse("submissions:settings", args=[course.slug, assignment.slug])
    form = client_for(instructor).get(url).context["form"]
    data = {k: ("" if v is None else v) for k, v in form.initial.items() if k in form.fields}
    data.update(leaderboard_metric="accuracy", leaderboard_order="desc", leaderboard_names="full", late_policy="penalty")
    data = {k: v for k, v in data.items() if v is not False}
    assert client_for(ta).post(url, data).status_code == 403
    r = client_for(instructor).post(url, data)
    assert r.status_code == 302, r.context["form"].errors if r.context else r
    assignment.refresh_from_db()
    assert (assignment.leaderboard_metric, assignment.leaderboard_names) == ("accuracy", "full")
    data["leaderboard_metric"] = "<script>"
    r = client_for(instructor).post(url, data)
    assert r.status_code == 200 and "A metric name as the pack reports it" in r.content.decode()


def test_pack_declares_its_leaderboard(tmp_path, course):
    from cp_helpers import write_pack

    assert leaderboard_settings({"tags": ["bert", "leaderboard"]}) == {"leaderboard.metric": "accuracy", "leaderboard.order": "desc"}
    assert leaderboard_settings({"tags": ["leaderboard:loss:asc"]}) == {"leaderboard.metric": "loss", "leaderboard.order": "asc"}
    assert leaderboard_settings({"leaderboard": {"metric": "f1"}}) == {"leaderboard.metric": "f1", "leaderboard.order": "desc"}
    assert leaderboard_settings({"tags": ["notebook"]}) == {}
    pack = write_pack(tmp_path / "a")
    toml = pack / "assignment.toml"
    toml.write_text(toml.read_text().replace('module = "tiny"', 'module = "tiny"\ntags = ["leaderboard:f1"]'))
    a, _ = sync_pack(course, pack)
    assert (a.leaderboard_metric, a.leaderboard_order) == ("f1", "desc")
    a.leaderboard_metric = "accuracy"  # the instructor's choice survives a re-sync of the same pack
    a.save()
    a, _ = sync_pack(course, pack)
    assert a.leaderboard_metric == "accuracy"


def test_real_bert_pack_gets_a_leaderboard(course, settings):
    """The course's bert_finetune pack declares one (tag `leaderboard`)."""
    from pathlib import Path

    pack = Path(__file__).resolve().parents[2] / "assignments" / "bert_finetune"
    assert (pack / "assignment.toml").is_file(), "the course's bert_finetune pack is missing"
    a, _ = sync_pack(course, pack)
    assert a.leaderboard_metric in ("accuracy", "f1")


def test_non_finite_metrics_are_saved_as_null(assignment, student):
    """A diverged model's NaN metric must not make the save fail (PostgreSQL JSON has no NaN)."""
    from courseplatform.submissions.tasks import _save_result

    sub = graded(assignment, student, {}, state="running")
    result = {"score": 4.0, "max_score": 10.0, "status": "graded", "message": "4/10", "tests": [],
              "metrics": {"f1": float("nan"), "accuracy": 0.5, "loss": float("inf")}}
    assert _save_result(sub, sub.generation, result) == "saved"
    sub.refresh_from_db()
    assert sub.state == "graded" and sub.result["metrics"] == {"f1": None, "accuracy": 0.5, "loss": None}
