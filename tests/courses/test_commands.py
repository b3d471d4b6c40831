"""load_demo (idempotent) and sync_course (dispatch to every app's sync hook)."""
import io
import types

import pytest
from django.core.management import CommandError, call_command

from courseplatform.courses import demo_data
from courseplatform.courses import attendance as att
from courseplatform.courses.models import Attendance, Course, LectureSession, Membership

pytestmark = pytest.mark.django_db


def counts():
    from django.contrib.auth import get_user_model

    return (Course.objects.count(), get_user_model().objects.count(), Membership.objects.count(),
            LectureSession.objects.count(), Attendance.objects.count())


def only_courses_hook(monkeypatch, name, extra=()):
    from courseplatform.core import hooks

    function = hooks.KINDS[name][0]
    registered = [h for h in hooks._registry.get(name, []) if h.app == "courses"]
    registered += [hooks.Hook(m.__name__.split(".")[1], name, m.__name__, getattr(m, function)) for m in extra]
    monkeypatch.setitem(hooks._registry, name, registered)


def test_load_demo_is_idempotent(monkeypatch):
    only_courses_hook(monkeypatch, "demo")  # the other apps' demo data is tested by their owners
    out = io.StringIO()
    call_command("load_demo", "--logins", stdout=out)
    first = counts()
    assert first == (1, 10, 10, len(demo_data.SESSIONS), 8 * demo_data.MARKED_SESSIONS)
    text = out.getvalue()
    assert "instructor / instructor-demo" in text and "student8   / student8-demo" in text
    course = Course.objects.get(slug="llms")
    flagged = [r.user.username for r in att.flagged_students(course)]
    assert flagged == ["student8"]
    from django.contrib.auth import authenticate
    from django.http import HttpRequest

    assert authenticate(HttpRequest(), username="instructor", password="instructor-demo") is not None  # axes: a request
    call_command("load_demo", stdout=io.StringIO())
    assert counts() == first


def test_load_demo_reports_failing_hook_and_keeps_the_rest(monkeypatch):
    bad = types.ModuleType("courseplatform.broken.demo")

    def load(course, people, stdout):
        LectureSession.objects.create(course=course, date="2030-01-01", title="half-done")
        raise RuntimeError("demo exploded")

    bad.load = load
    only_courses_hook(monkeypatch, "demo", extra=[bad])
    err = io.StringIO()
    with pytest.raises(CommandError, match="Demo data failed for: courseplatform.broken"):
        call_command("load_demo", stdout=io.StringIO(), stderr=err)
    assert "demo exploded" in err.getvalue()
    assert not LectureSession.objects.filter(title="half-done").exists()  # rolled back
    assert LectureSession.objects.count() == len(demo_data.SESSIONS)


def test_sync_course_dispatches_to_every_hook(monkeypatch, tmp_path, course, other_course):
    seen = []
    fake = types.ModuleType("courseplatform.fakeapp.sync")
    fake.sync = lambda c, root, stdout: seen.append((c.slug, root))
    only_courses_hook(monkeypatch, "sync", extra=[fake])
    out = io.StringIO()
    call_command("sync_course", str(tmp_path), stdout=out)  # two courses: the demo course (llms)
    assert seen == [("llms", tmp_path.resolve())]
    call_command("sync_course", str(tmp_path), "--course", "other", stdout=out)
    assert seen[-1][0] == "other"
    with pytest.raises(CommandError, match="No course with slug 'nope'"):
        call_command("sync_course", str(tmp_path), "--course", "nope")
    with pytest.raises(CommandError, match="is not a folder"):
        call_command("sync_course", str(tmp_path / "missing"))


def test_sync_course_needs_a_choice_among_several(monkeypatch, tmp_path, other_course):
    Course.objects.create(slug="third", title="Third")
    only_courses_hook(monkeypatch, "sync")
    with pytest.raises(CommandError, match="choose one with --course"):
        call_command("sync_course", str(tmp_path))


def test_sync_course_reports_a_failing_app(monkeypatch, tmp_path, course):
    fake = types.ModuleType("courseplatform.fakeapp.sync")

    def sync(c, root, stdout):
        raise ValueError("bad pack attention: missing tests.py")

    fake.sync = sync
    only_courses_hook(monkeypatch, "sync", extra=[fake])
    with pytest.raises(CommandError, match="courseplatform.fakeapp failed to sync: bad pack attention"):
        call_command("sync_course", str(tmp_path), stdout=io.StringIO())


def test_sync_course_goes_on_after_an_app_with_broken_parts_then_fails(monkeypatch, tmp_path, course):
    """An app whose sync raises PartsFailed (it synced the rest) does not stop the other apps, and
    the command exits non-zero naming every broken part."""
    from courseplatform.core.hooks import PartsFailed

    seen = []
    partly = types.ModuleType("courseplatform.partly.sync")

    def sync(c, root, stdout):
        raise PartsFailed(["pack x: ValueError: no tests.py", "pack y: KeyError: 'title'"])

    partly.sync = sync
    fine = types.ModuleType("courseplatform.fine.sync")
    fine.sync = lambda c, root, stdout: seen.append(c.slug)
    only_courses_hook(monkeypatch, "sync", extra=[partly, fine])
    with pytest.raises(CommandError, match=r"2 part\(s\) could not be synced") as failed:
        call_command("sync_course", str(tmp_path), stdout=io.StringIO())
    assert "courseplatform.partly: pack x: ValueError: no tests.py" in str(failed.value)
    assert seen == ["llms"]
