"""sync_course loads packs idempotently into trusted storage; load_demo's hook grades for real."""
from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from cp_helpers import write_pack
from courseplatform.core.hooks import PartsFailed
from courseplatform.submissions.models import Assignment, Submission
from courseplatform.submissions.sync import sync

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def test_sync_is_idempotent_and_copies_the_pack_to_trusted_storage(course, tmp_path, settings):
    root = tmp_path / "assignments"
    write_pack(root, "tiny")
    write_pack(root, "gpu_pack", queue="gpu")
    (root / "broken").mkdir()
    (root / "broken" / "assignment.toml").write_text("title = 3\n")
    out = io.StringIO()
    with pytest.raises(PartsFailed) as failed:  # the broken pack is named once the others are synced
        sync(course, root, out)
    done = failed.value.result
    assert sorted(a.slug for a in done) == ["gpu_pack", "tiny"]
    assert "broken: SKIPPED" in out.getvalue() and failed.value.problems[0].startswith("assignment pack broken: ")
    (root / "broken" / "assignment.toml").unlink()
    a = Assignment.objects.get(slug="tiny")
    assert Path(a.pack_path) == Path(settings.PACK_STORE) / "tiny" / a.pack_hash
    assert (Path(a.pack_path) / "tests.py").is_file() and a.points == 10 and a.queue == "cpu"
    assert Assignment.objects.get(slug="gpu_pack").queue == "gpu"
    assert "<script>" not in a.handout_html and "<h1" in a.handout_html
    before = list(Assignment.objects.order_by("pk").values())
    out = io.StringIO()
    sync(course, root, out)
    assert list(Assignment.objects.order_by("pk").values()) == before
    assert "tiny: unchanged" in out.getvalue()


def test_sync_keeps_instructor_settings_unless_the_pack_changes_them(course, tmp_path):
    root = tmp_path / "assignments"
    pack = write_pack(root, "tiny")
    sync(course, root, io.StringIO())
    a = Assignment.objects.get()
    due = timezone.now() + timedelta(days=9)
    a.due_at, a.late_penalty_percent = due, 25
    a.save()
    old_path = a.pack_path
    (pack / "handout.md").write_text("# Tiny v2\n")
    sync(course, root, io.StringIO())
    a.refresh_from_db()
    assert a.due_at == due and a.late_penalty_percent == 25  # kept
    assert a.pack_path != old_path and Path(old_path).is_dir()  # new version stored, old one kept
    assert "Tiny v2" in a.handout_html
    (pack / "assignment.toml").write_text((pack / "assignment.toml").read_text() + "\n[late]\npenalty_percent_per_day = 5\nmax_days = 0\n")
    sync(course, root, io.StringIO())
    a.refresh_from_db()
    assert a.late_penalty_percent == 5 and a.late_policy == "closed"


def test_real_attention_pack_syncs_with_its_late_defaults(course):
    from courseplatform.submissions.sync import sync_pack

    a, what = sync_pack(course, ROOT / "assignments" / "attention")
    assert what == "created"
    assert a.title == "Scaled dot-product attention" and a.points == 10 and a.grace_minutes == 15
    assert a.late_penalty_percent == 10 and a.late_cutoff_days == 3 and a.kinds == ["py", "ipynb", "zip"]
    assert a.wall_limit_s == 60 and (Path(a.pack_path) / "starter.ipynb").is_file()


def test_demo_hook_grades_for_real_and_is_idempotent(course, make_user, settings, tmp_path):
    """Through the real engine (the attention pack only, to stay fast)."""
    import shutil

    from courseplatform.submissions import demo

    shutil.copytree(ROOT / "assignments" / "attention", tmp_path / "content" / "attention")
    settings.ASSIGNMENTS_DIR = tmp_path / "content"
    people = {"instructor": make_user("i"), "ta": make_user("t"), "students": [make_user(f"s{i}") for i in range(5)]}
    out = io.StringIO()
    demo.load(course, people, out)
    subs = Submission.objects.filter(assignment__slug="attention")
    assert subs.count() == 5 and set(subs.values_list("state", flat=True)) == {"graded"}, list(subs.values("state", "message"))
    scores = sorted(subs.values_list("score", flat=True))
    assert scores[-1] == 10 and scores[0] < 10
    assert Assignment.objects.get(slug="attention").due_at is not None
    demo.load(course, people, io.StringIO())
    assert Submission.objects.filter(assignment__slug="attention").count() == 5


def test_handout_formulas_reach_katex_intact():
    """Markdown must not eat the `_`, `*` and `\\\\` inside formulas; the page renders them with KaTeX."""
    from courseplatform.submissions.sync import render_handout

    html = render_handout("Scores: $$s_i \\leftarrow \\begin{cases} a_1 \\\\ b_2 \\end{cases}$$ and $q_*k_*$, *emphasis*.\n")
    assert "$$s_i \\leftarrow \\begin{cases} a_1 \\\\ b_2 \\end{cases}$$" in html
    assert "$q_*k_*$" in html and "<em>emphasis</em>" in html
    assert "<script" not in render_handout("$<script>alert(1)</script>$")


def test_assignment_page_loads_katex(client_for, student, course):
    from django.urls import reverse

    from courseplatform.submissions.models import Assignment

    Assignment.objects.create(course=course, slug="attention", title="Attention", handout_html="<p>$x_1$</p>",
                              released=True)
    page = client_for(student).get(reverse("submissions:detail", args=[course.slug, "attention"])).content.decode()
    assert "katex/katex.min.js" in page and "js/math.js" in page and "data-math" in page


def test_sync_course_exits_non_zero_on_a_broken_pack_and_logs_its_cause(course, tmp_path, caplog):
    """Issue 23: a broken pack is no longer a "SKIPPED" line in a run that exits 0: the good packs are
    synced, the broken one is logged with its cause, and the command fails (manage.py exits 1)."""
    from django.core.management import call_command
    from django.core.management.base import CommandError

    root = tmp_path / "assignments"
    write_pack(root, "tiny")
    (root / "broken").mkdir()
    (root / "broken" / "assignment.toml").write_text("title = 3\n")
    out = io.StringIO()
    with caplog.at_level("ERROR"), pytest.raises(CommandError, match=r"1 part\(s\) could not be synced") as failed:
        call_command("sync_course", str(root), "--course", course.slug, stdout=out)
    assert "courseplatform.submissions: assignment pack broken" in str(failed.value)
    assert Assignment.objects.filter(course=course, slug="tiny").exists()
    assert "- courseplatform.quizzes" in out.getvalue()  # the other apps synced after it
    logged = [r for r in caplog.records if "assignment pack broken" in r.getMessage()]
    assert logged and logged[0].exc_info is not None  # the cause, with its traceback
