from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.test import RequestFactory
from django.utils import timezone

from courseplatform.courses.models import Membership
from courseplatform.projects import dashboard, demo, services, sync
from courseplatform.projects.models import (
    Delivery,
    DeliveryVersion,
    Group,
    GroupMember,
    Milestone,
    MilestoneGrade,
    ProjectSettings,
    RubricCriterion,
)

pytestmark = pytest.mark.django_db

ROOT = Path(settings.BASE_DIR) / "assignments"


def snapshot(course):
    return (
        list(Milestone.objects.filter(course=course).order_by("slug").values()),
        list(RubricCriterion.objects.filter(milestone__course=course).order_by("id").values()),
        list(Group.objects.filter(course=course).order_by("id").values("id", "name", "join_code")),
        list(GroupMember.objects.filter(course=course).order_by("id").values("user_id", "group_id")),
        list(DeliveryVersion.objects.order_by("id").values("id", "number", "is_late", "sha256")),
        list(MilestoneGrade.objects.order_by("id").values("id", "score")),
    )


def test_course_plan_loads_and_is_idempotent(course):
    out = StringIO()
    sync.sync(course, ROOT, out)
    ms = {m.slug: m for m in Milestone.objects.filter(course=course)}
    assert list(ms) == ["form-groups", "literature-review-1", "literature-review-2", "project-proposal",
                        "data-baseline", "model-implementation", "experiments", "results-analysis", "presentations"]
    local = {s: timezone.localtime(m.due).strftime("%d.%m.%Y") for s, m in ms.items()}
    assert local["form-groups"] == "30.10.2026"
    assert local["literature-review-1"] == "06.11.2026" and ms["literature-review-1"].min_sources == 2
    assert local["literature-review-2"] == "13.11.2026" and ms["literature-review-2"].min_sources == 3
    assert local["project-proposal"] == "20.11.2026" and local["results-analysis"] == "18.12.2026"
    assert local["presentations"] == "08.01.2027"
    assert ms["literature-review-1"].max_points == 10
    cfg = ProjectSettings.for_course(course)
    assert cfg.max_group_size == 4 and cfg.lock_at == ms["form-groups"].due
    assert "9 created" in out.getvalue()
    before = snapshot(course)
    out = StringIO()
    sync.sync(course, ROOT, out)
    assert snapshot(course) == before
    assert "0 created, 0 updated, 9 unchanged" in out.getvalue()


def test_sync_rejects_bad_plan(course, tmp_path):
    (tmp_path / "milestones.toml").write_text('[[milestone]]\nslug = "x"\ntitle = "X"\ndue = "tomorrow"\n')
    with pytest.raises(sync.PlanError, match="due must be a TOML date-time"):
        sync.sync(course, tmp_path, StringIO())
    (tmp_path / "milestones.toml").write_text(
        '[[milestone]]\nslug = "x"\ntitle = "X"\ndue = 2026-11-01T10:00:00Z\ndeliverable = "floppy"\n')
    with pytest.raises(sync.PlanError, match="deliverable must be one of"):
        sync.sync(course, tmp_path, StringIO())
    assert not Milestone.objects.exists()
    out = StringIO()
    sync.sync(course, tmp_path / "nowhere", out)
    assert "nothing to load" in out.getvalue()


def test_demo_populates_matrix_and_is_idempotent(course, instructor, ta, make_user, settings, tmp_path, monkeypatch):
    settings.MEDIA_ROOT = tmp_path / "media"
    # The demo follows the lecture plan (Oct 2026 - Jan 2027): run it at a fixed moment inside the
    # plan, so the test means the same whatever day the suite runs.
    fixed = datetime(2026, 11, 24, 12, 0, tzinfo=dt_timezone.utc)
    monkeypatch.setattr(timezone, "now", lambda: fixed)
    students = []
    for i in range(8):
        u = make_user(f"demo{i}")
        Membership.objects.create(course=course, user=u, role="student")
        students.append(u)
    people = {"instructor": instructor, "ta": ta, "students": students}
    demo.load(course, people, StringIO())
    assert Milestone.objects.filter(course=course, due__lt=fixed, slug="literature-review-1").exists()
    assert Milestone.objects.filter(course=course, due__gt=fixed).exists()
    groups = list(Group.objects.filter(course=course))
    assert len(groups) == 3 and all(2 <= g.members.count() <= 4 for g in groups)
    assert list(services.students_without_group(course)) == [students[-1]]
    assert Delivery.objects.filter(milestone__slug="literature-review-1").exists()
    assert DeliveryVersion.objects.filter(is_late=True).exists()
    assert MilestoneGrade.objects.filter(milestone__slug="literature-review-1").exists()
    assert DeliveryVersion.objects.filter(delivery__milestone__slug="literature-review-1", number=2).exists()
    _, rows = services.matrix(course)
    states = {c.state for _, cells in rows for c in cells}
    assert {"graded", "on_time", "late", "missing", "open"} <= states
    assert any(c.late for _, cells in rows for c in cells if c.state == "graded")
    before = snapshot(course)
    demo.load(course, people, StringIO())
    assert snapshot(course) == before


def _panels(user, course, role):
    request = RequestFactory().get("/")
    request.user = user
    return dashboard.panels(request, course, Membership.objects.get(course=course, user=user))


def test_dashboard_panels(course, instructor, student, other_student, make_group, make_milestone):
    from django.template.loader import render_to_string

    team = make_group("Alpha", [student])
    make_group("Beta", [])
    nxt = make_milestone("next", due=timezone.now() + timedelta(days=2))
    make_milestone("past", due=timezone.now() - timedelta(days=2))
    [p] = _panels(student, course, "student")
    assert p.context["group"] == team and p.context["next"] == nxt
    html = render_to_string(p.template, {**p.context, "course": course})
    assert "Alpha" in html and "Next" in html and "not delivered yet" in html
    [p] = _panels(other_student, course, "student")
    assert p.context["group"] is None
    assert "Create or join one" in render_to_string(p.template, {**p.context, "course": course})
    [s] = _panels(instructor, course, "instructor")
    assert [g.name for g in s.context["missing"]] == ["Alpha", "Beta"]
    assert s.context["without_group"] == 1 and s.context["overdue"] == 2
    html = render_to_string(s.template, {**s.context, "course": course})
    assert "0 of 2 delivered" in html and "1 student without a group" in html


def test_sync_does_not_relock_after_instructor_unlocks(course, instructor):
    sync.sync(course, ROOT, StringIO())
    cfg = ProjectSettings.for_course(course)
    cfg.lock_at, cfg.max_group_size = None, 5  # what the instructor set in the page...
    cfg.save()
    services.set_locked(course, instructor, False)  # ...recorded in the history
    sync.sync(course, ROOT, StringIO())
    cfg = ProjectSettings.for_course(course)
    assert cfg.lock_at is None and cfg.max_group_size == 5 and not cfg.is_locked()
