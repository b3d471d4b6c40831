from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from courseplatform.projects import services
from courseplatform.projects.gradebook import items as milestone_items
from courseplatform.projects.models import CriterionScore, MilestoneGrade

from .conftest import pdf_upload

pytestmark = pytest.mark.django_db

RUBRIC = [("Question", 3), ("Data and evaluation", 4), ("Plan", 3)]


def durl(course, m, g, name="delivery"):
    return reverse(f"projects:{name}", args=[course.slug, m.pk, g.pk])


@pytest.fixture
def setup(course, student, other_student, make_group, make_milestone):
    team = make_group("Team A", [student, other_student])
    m = make_milestone("proposal", rubric=RUBRIC)
    services.deliver(m, team, student, upload=pdf_upload())
    return m, team


def post_grade(client, course, m, team, values, feedback="", **extra):
    crit = list(m.criteria.all())
    data = {f"criterion_{c.pk}": v for c, v in zip(crit, values)}
    data["feedback"] = feedback
    data.update(extra)
    return client.post(durl(course, m, team, "grade"), data)


def test_rubric_grade_sums_criteria_and_group_sees_feedback(course, instructor, student, other_student, setup,
                                                            client_for):
    m, team = setup
    assert m.max_points == 10
    r = post_grade(client_for(instructor), course, m, team, ["2.5", "4", "1"],
                   feedback="Good **start**.\n\n<script>alert('x')</script>")
    assert r.status_code == 302
    g = MilestoneGrade.objects.get()
    assert float(g.score) == 7.5
    assert [float(cs.points) for cs in g.criterion_scores.all()] == [2.5, 4, 1]
    assert g.graded_version.number == 1
    for member in (student, other_student):
        body = client_for(member).get(durl(course, m, team)).content.decode()
        assert "Grade: 7.5 / 10" in body
        assert "Good <strong>start</strong>." in body
        assert "<script>alert('x')" not in body
        assert 'id="grade-form"' not in body  # students cannot grade


def test_criterion_over_max_refused(course, instructor, setup, client_for):
    m, team = setup
    r = post_grade(client_for(instructor), course, m, team, ["3.5", "4", "3"])
    assert r.status_code == 400
    body = r.content.decode()
    assert "Question: 3.5 is more than the maximum of 3 points." in body
    assert 'value="3.5"' in body  # the form keeps what was typed
    assert not MilestoneGrade.objects.exists()


@pytest.mark.parametrize("values,message", [
    (["-1", "4", "3"], "cannot be negative"),
    (["abc", "4", "3"], "enter a number"),
    (["NaN", "4", "3"], "enter a number"),
    (["", "4", "3"], "enter the points"),
])
def test_bad_criterion_values_refused(course, instructor, setup, client_for, values, message):
    m, team = setup
    r = post_grade(client_for(instructor), course, m, team, values)
    assert r.status_code == 400 and message in r.content.decode()
    assert not MilestoneGrade.objects.exists()


def test_grade_without_rubric_and_over_max(course, instructor, student, make_group, make_milestone, client_for):
    team = make_group("Solo", [student])
    m = make_milestone("baseline", points=10)
    c = client_for(instructor)
    r = c.post(durl(course, m, team, "grade"), {"score": "10.5"})
    assert r.status_code == 400 and "Score: 10.5 is more than the maximum of 10 points." in r.content.decode()
    assert c.post(durl(course, m, team, "grade"), {"score": "8"}).status_code == 302
    assert float(MilestoneGrade.objects.get().score) == 8


def test_regrade_replaces_scores(course, ta, setup, client_for):
    m, team = setup
    c = client_for(ta)
    post_grade(c, course, m, team, ["3", "4", "3"])
    post_grade(c, course, m, team, ["1", "1", "1"])
    assert MilestoneGrade.objects.count() == 1 and CriterionScore.objects.count() == 3
    assert float(MilestoneGrade.objects.get().score) == 3


def test_member_override_in_gradebook(course, instructor, student, other_student, setup, client_for):
    m, team = setup
    c = client_for(instructor)
    r = post_grade(c, course, m, team, ["3", "4", "3"], **{f"override_{other_student.id}": "2"})
    assert r.status_code == 400 and "Give a reason" in r.content.decode()
    r = post_grade(c, course, m, team, ["3", "4", "3"], **{f"override_{other_student.id}": "11",
                                                            f"reason_{other_student.id}": "x"})
    assert r.status_code == 400 and "more than the maximum of 10" in r.content.decode()
    post_grade(c, course, m, team, ["3", "4", "3"], **{f"override_{other_student.id}": "2",
                                                       f"reason_{other_student.id}": "did not contribute"})
    item = next(i for i in milestone_items(course) if i.key == "milestone:proposal")
    assert item.scores == {student.id: 10.0, other_student.id: 2.0}
    assert item.notes[other_student.id] == "individual score"
    # the student sees their own override, not the other member's
    assert "did not contribute" in client_for(other_student).get(durl(course, m, team)).content.decode()
    assert "did not contribute" not in client_for(student).get(durl(course, m, team)).content.decode()


def test_students_cannot_grade_or_see_staff_pages(course, student, setup, outsider, client_for):
    m, team = setup
    assert post_grade(client_for(student), course, m, team, ["3", "4", "3"]).status_code == 403
    assert client_for(outsider).post(durl(course, m, team, "grade"), {}).status_code == 404
    assert not MilestoneGrade.objects.exists()
    assert client_for(student).get(reverse("projects:milestone_new", args=[course.slug])).status_code == 403
    # a student's project index is their own page, not the matrix
    assert 'id="matrix"' not in client_for(student).get(reverse("projects:index", args=[course.slug])).content.decode()


def test_grading_group_of_other_course_404(course, other_course, instructor, outsider, make_group, setup,
                                           client_for):
    m, _ = setup
    foreign = make_group("Foreign", [outsider], course=other_course)
    assert client_for(instructor).post(durl(course, m, foreign, "grade"), {}).status_code == 404


def test_matrix_cells(course, instructor, student, other_student, make_group, make_milestone, client_for):
    a = make_group("Alpha", [student])
    b = make_group("Beta", [other_student])
    m1 = make_milestone("m1", due=timezone.now() - timedelta(days=2), allow_late=True)
    m2 = make_milestone("m2")
    services.deliver(m1, a, student, upload=pdf_upload(), now=m1.due - timedelta(hours=1))
    MilestoneGrade.objects.create(milestone=m1, group=a, score=9, graded_by=instructor)
    services.deliver(m2, b, other_student, upload=pdf_upload())
    milestones, rows = services.matrix(course)
    states = {(g.name, c.milestone.slug): c.state for g, cells in rows for c in cells}
    assert states == {("Alpha", "m1"): "graded", ("Alpha", "m2"): "open",
                      ("Beta", "m1"): "missing", ("Beta", "m2"): "on_time"}
    services.deliver(m1, b, other_student, upload=pdf_upload())
    assert services.state_for_group(m1, b).state == "late"
    body = client_for(instructor).get(reverse("projects:index", args=[course.slug])).content.decode()
    assert 'id="matrix"' in body and "graded 9/10" in body and "late" in body
    assert durl(course, m1, b) in body


def test_instructor_edits_milestone_with_rubric(course, instructor, ta, client_for, make_milestone):
    data = {
        "title": "Experiments", "slug": "experiments", "due": "2026-12-11T23:59", "deliverable": "both",
        "file_types": "pdf, MD", "allow_late": "on", "points": "0", "min_sources": "0", "instructions": "Run *it*.",
        "rubric-TOTAL_FORMS": "2", "rubric-INITIAL_FORMS": "0", "rubric-MIN_NUM_FORMS": "0",
        "rubric-MAX_NUM_FORMS": "1000",
        "rubric-0-title": "Ablation", "rubric-0-points": "6", "rubric-0-description": "", "rubric-0-order": "0",
        "rubric-1-title": "Seeds", "rubric-1-points": "4", "rubric-1-description": "", "rubric-1-order": "1",
    }
    assert client_for(ta).post(reverse("projects:milestone_new", args=[course.slug]), data).status_code == 403
    r = client_for(instructor).post(reverse("projects:milestone_new", args=[course.slug]), data)
    assert r.status_code == 302
    from courseplatform.projects.models import Milestone

    m = Milestone.objects.get(slug="experiments")
    assert m.max_points == 10 and m.file_types == "pdf,md"
    bad = dict(data, file_types="exe")
    r = client_for(instructor).post(reverse("projects:milestone_edit", args=[course.slug, m.pk]), bad)
    assert r.status_code == 200 and "Unsupported type(s): exe" in r.content.decode()
