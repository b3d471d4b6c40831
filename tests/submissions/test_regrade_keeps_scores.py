"""Issue 28, item 3: a regrade never blanks the scores it will replace. Until the new result of a
submission arrives, its previous score counts (staff page, the student's page, the gradebook after
the deadline, the leaderboard) and is shown as "regrading"; the new result replaces it."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

pytestmark = pytest.mark.django_db


@pytest.fixture
def graded(assignment, student):
    from courseplatform.submissions.models import Submission

    assignment.due_at = timezone.now() - timedelta(days=1)  # past the deadline: a missing score would be 0
    assignment.save()
    now = timezone.now()
    return Submission.objects.create(
        assignment=assignment, student=student, attempt=1, sha256="0" * 64, blob="x", original_name="solution.py",
        kind="py", size=10, state="graded", score=8, raw_score=8, max_score=10, message="Graded.",
        created_at=now - timedelta(days=2), started_at=now - timedelta(days=2), finished_at=now - timedelta(days=2),
        result={"status": "graded", "score": 8, "max_score": 10, "tests": [
            {"name": "double", "score": 8, "max_score": 10, "status": "failed", "message": "one case wrong"}]})


def test_regrade_all_keeps_the_old_scores_until_the_new_results(assignment, student, graded, instructor, client_for):
    from courseplatform.submissions import gradebook
    from courseplatform.submissions.models import Submission

    staff = client_for(instructor)
    r = staff.post(reverse("submissions:regrade", args=[assignment.course.slug, assignment.slug]), {"scope": "all"})
    assert r.status_code == 302
    graded.refresh_from_db()
    assert graded.state == "queued" and graded.generation == 2 and graded.regrading and graded.score == 8

    page = staff.get(reverse("submissions:staff", args=[assignment.course.slug, assignment.slug]))
    assert page.context["counted_n"] == 1 and page.context["mean"] == 8
    assert page.context["regrading_n"] == 1
    body = page.content.decode()
    assert 'data-testid="regrading-n">1<' in body

    mine = client_for(student).get(reverse("submissions:detail", args=[assignment.course.slug, assignment.slug]))
    html = mine.content.decode()
    assert mine.context["counted"].pk == graded.pk
    assert '<strong class="points">8</strong> / 10 <span class="badge warn" data-testid="regrading">regrading</span>' in html

    item = next(i for i in gradebook.items(assignment.course) if i.key == f"assignment:{assignment.slug}")
    assert item.scores[student.pk] == 8 and "regrading" in item.notes[student.pk]

    # The new result arrives: it replaces the old one.
    from courseplatform.submissions.tasks import _save_result

    _save_result(graded, 2, {"status": "graded", "score": 6, "max_score": 10, "tests": []})
    graded = Submission.objects.get(pk=graded.pk)
    assert graded.state == "graded" and graded.score == 6 and not graded.regrading
    item = next(i for i in gradebook.items(assignment.course) if i.key == f"assignment:{assignment.slug}")
    assert item.scores[student.pk] == 6 and student.pk not in item.notes


def test_a_regraded_error_keeps_no_score(assignment, student, graded):
    from courseplatform.submissions import services

    graded.state, graded.score = "error", 0
    graded.save()
    services.regrade(type(graded).objects.filter(pk=graded.pk))
    graded.refresh_from_db()
    assert graded.state == "queued" and graded.score is None and not graded.regrading
    assert services.counted_score(assignment, [graded]) is None


def test_a_regrade_that_cannot_run_leaves_the_previous_result(assignment, student, graded, monkeypatch):
    """The engine is away for the whole regrade (an infrastructure fault to the last retry): the
    previous result stands, through the one grading path."""
    from courseplatform.grading import engine
    from courseplatform.submissions import services, tasks
    from grader.errors import GraderError

    def unavailable(*args, **kwargs):
        raise GraderError("sandbox unavailable")

    services.regrade(type(graded).objects.filter(pk=graded.pk))
    graded.refresh_from_db()
    monkeypatch.setattr(engine, "grade_function", lambda: unavailable)
    assert tasks.grade_submission.apply(args=[graded.pk, graded.generation]).get() == "regrade-failed"
    graded.refresh_from_db()
    assert graded.state == "graded" and graded.score == 8 and "previous result stands" in graded.message
