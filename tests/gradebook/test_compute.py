"""Gradebook arithmetic and CSV export, checked against hand-built items."""
import csv
import io
from datetime import datetime, timedelta, timezone as dt_tz
from types import SimpleNamespace

import pytest

from courseplatform.core import csvexport
from courseplatform.core.hooks import GradeItem
from courseplatform.gradebook import compute

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=dt_tz.utc)
PAST = NOW - timedelta(days=3)
FUTURE = NOW + timedelta(days=3)


def user(uid, username, first="", last="", email=""):
    return SimpleNamespace(id=uid, username=username, first_name=first, last_name=last, email=email)


ANN, BEN = user(1, "ann", "Ann", "Arbor", "ann@x.edu"), user(2, "ben", "Ben", "Bell", "ben@x.edu")
WEIGHTS = {"assignments": 40, "quizzes": 20, "milestones": 30, "attendance": 10}


def items():
    return [
        GradeItem("assignment:attention", "Attention", "assignments", 10, {1: 8, 2: 5}, due=PAST),
        GradeItem("assignment:gen", "Generation", "assignments", 30, {1: 30, 2: None}, due=PAST,
                  notes={1: "late -10%"}),
        GradeItem("quiz:1", "Quiz 1", "quizzes", 10, {1: 5, 2: 10}, due=PAST),
        GradeItem("quiz:2", "Quiz 2", "quizzes", 10, {1: None, 2: 4}, due=FUTURE),  # open: counts for ben only
        GradeItem("milestone:lr1", "Literature review I", "milestones", 10, {1: 9, 2: 9}, due=PAST),
        GradeItem("attendance", "Attendance", "attendance", 12, {1: 12, 2: 6}, flags={2: "4 absences"}),
    ]


def build(its=None, weights=WEIGHTS):
    return compute.build(course=None, items=its if its is not None else items(), now=NOW, weights=weights,
                         users=[ANN, BEN])


def test_category_percentages_and_weighted_total(monkeypatch):
    monkeypatch.setattr(compute, "attendance_flags", lambda course, users, errors=None: {})
    book = build()
    ann, ben = book.row_for(1), book.row_for(2)
    assert ann.percents == pytest.approx({"assignments": 95.0, "quizzes": 50.0, "milestones": 90.0,
                                          "attendance": 100.0})
    assert ann.total == pytest.approx((40 * 95 + 20 * 50 + 30 * 90 + 10 * 100) / 100)  # 85.0
    # ben: a missing past-due score counts 0; an open item he has a score for counts
    assert ben.percents == pytest.approx({"assignments": 12.5, "quizzes": 70.0, "milestones": 90.0,
                                          "attendance": 50.0})
    assert ben.total == pytest.approx((40 * 12.5 + 20 * 70 + 30 * 90 + 10 * 50) / 100)
    assert "quiz:2" not in ann.counted and "quiz:2" in ben.counted
    assert ann.notes == {"assignment:gen": "late -10%"} and ben.flags == ["4 absences"]


def test_empty_category_left_out_and_weights_renormalised(monkeypatch):
    monkeypatch.setattr(compute, "attendance_flags", lambda course, users, errors=None: {})
    its = [i for i in items() if i.category in ("assignments", "milestones")]
    book = build(its)
    assert book.categories == ["assignments", "milestones"]
    assert book.effective_weights() == pytest.approx({"assignments": 40 / 70 * 100, "milestones": 30 / 70 * 100})
    ann = book.row_for(1)
    assert ann.percents["quizzes"] is None
    assert ann.total == pytest.approx((40 * 95 + 30 * 90) / 70)


def test_only_open_items_means_no_total(monkeypatch):
    monkeypatch.setattr(compute, "attendance_flags", lambda course, users, errors=None: {})
    book = build([GradeItem("quiz:9", "Quiz 9", "quizzes", 10, {}, due=FUTURE)])
    assert book.row_for(1).total is None and book.row_for(1).percents["quizzes"] is None
    assert compute.fmt(book.row_for(1).total) == ""


def test_zero_weights_and_zero_max_items(monkeypatch):
    monkeypatch.setattr(compute, "attendance_flags", lambda course, users, errors=None: {})
    its = items() + [GradeItem("milestone:form", "Form groups", "milestones", 0, {1: None})]
    book = build(its, weights={"assignments": 0, "quizzes": 0, "milestones": 1, "attendance": 0})
    assert book.row_for(1).total == pytest.approx(90.0)
    assert "milestone:form" not in book.row_for(1).counted


def test_csv_export_matches_the_values(monkeypatch):
    monkeypatch.setattr(compute, "attendance_flags", lambda course, users, errors=None: {})
    book = build()
    rows = list(csv.reader(io.StringIO(csvexport.csv_text(compute.csv_rows(book)))))
    assert rows[0] == ["Username", "First name", "Last name", "Email", "Attention [10]", "Generation [30]",
                       "Quiz 1 [10]", "Quiz 2 [10]", "Literature review I [10]", "Attendance [12]",
                       "Assignments %", "Quizzes %", "Milestones %", "Attendance %", "Total %"]
    assert rows[1] == ["ann", "Ann", "Arbor", "ann@x.edu", "8", "30", "5", "", "9", "12",
                       "95", "50", "90", "100", "85"]
    ben_total = (40 * 12.5 + 20 * 70 + 30 * 90 + 10 * 50) / 100
    assert rows[2] == ["ben", "Ben", "Bell", "ben@x.edu", "5", "", "10", "4", "9", "6",
                       "12.5", "70", "90", "50", compute.fmt(ben_total)]
    assert compute.fmt(ben_total) == "51"
    assert len(rows) == 3


def test_csv_rounding_and_injection(monkeypatch):
    monkeypatch.setattr(compute, "attendance_flags", lambda course, users, errors=None: {})
    evil = user(3, "=HYPERLINK(\"http://x\")", "+1", "-2", "@sum")
    its = [GradeItem("q", "=cmd|' /C calc'!A0", "quizzes", 3, {3: 1}),
           GradeItem("q2", "=cmd|' /C calc'!A0", "quizzes", 3, {3: 2})]
    book = compute.build(None, items=its, now=NOW, weights=WEIGHTS, users=[evil])
    rows = list(csv.reader(io.StringIO(csvexport.csv_text(compute.csv_rows(book)))))
    assert rows[0][4] == "'=cmd|' /C calc'!A0 [3]" and rows[0][5] == "'=cmd|' /C calc'!A0 [3] (2)"
    assert rows[1][:4] == ["'=HYPERLINK(\"http://x\")", "'+1", "'-2", "'@sum"]
    assert rows[1][-1] == "50"  # 3 of 6 points
    assert compute.fmt(33.333333) == "33.33" and compute.fmt(2.005) in ("2", "2.01") and compute.fmt(0.0) == "0"


def test_broken_or_duplicate_items_reported(monkeypatch, settings):
    def broken_items(course):
        raise RuntimeError("db gone")

    from courseplatform.core import hooks

    Broken = hooks.Hook("submissions", "gradebook", "courseplatform.submissions.gradebook", broken_items)
    Fine = hooks.Hook("quizzes", "gradebook", "courseplatform.quizzes.gradebook", lambda course: [
        GradeItem("quiz:1", "Quiz 1", "quizzes", 10), GradeItem("quiz:1", "Again", "quizzes", 10),
        GradeItem("x", "Odd", "bonus", 5)])

    monkeypatch.setitem(hooks._registry, "gradebook", [Broken, Fine])
    with pytest.raises(RuntimeError, match="db gone"):  # tests and DEBUG: a broken provider fails loudly
        compute.collect_items(None)
    settings.HOOKS_FAIL_LOUDLY = False  # production: logged, reported, the rest kept
    its, errors = compute.collect_items(None)
    assert [i.key for i in its] == ["quiz:1", "x"]
    assert any("submissions: RuntimeError: db gone" in e for e in errors)
    assert any("duplicate item key 'quiz:1'" in e for e in errors)
    assert any("unknown category 'bonus'" in e for e in errors)
