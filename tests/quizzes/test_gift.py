"""Moodle GIFT import: the common features; a question it cannot take is skipped with its line."""
from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from courseplatform.quizzes import bank
from courseplatform.quizzes.gift import GiftImportErrors, parse_gift

EXAMPLES = Path(__file__).with_name("gift_examples.gift")


def by_title():
    return {q["title"]: q for q in parse_gift(EXAMPLES.read_text()).questions}


def snap(q):
    return bank.build_snapshot(q, param_seed=0, choice_seed=0, shuffle_choices=False)


def test_all_examples_import():
    parsed = parse_gift(EXAMPLES.read_text())
    qs = parsed.questions
    assert len(qs) == 16 and parsed.skipped == []
    assert len({q["id"] for q in qs}) == 16


def test_multiple_choice_and_category():
    q = by_title()["Grant's tomb"]
    assert q["type"] == "single" and q["topic"] == "LLMs/Transformers"
    assert [c["text"] for c in q["choices"]] == ["Grant", "Jefferson", "no one"]
    assert bank.grade(snap(q), {"choice": "c"})[0] == 1.0
    assert bank.grade(snap(q), {"choice": "a"})[0] == 0.0


def test_missing_word_keeps_text_after_the_blank():
    q = by_title()["Missing word"]
    assert q["text"].startswith("Grant is") and q["text"].endswith("in Grant's tomb.")
    assert "\\_\\_\\_" in q["text"]


def test_feedback_general_feedback_and_markdown():
    q = by_title()["Attention formula"]
    assert "**what**" in q["text"]
    right = next(c for c in q["choices"] if c["correct"])
    assert right["text"] == "the square root of the key dimension" and "sqrt{d_k}" in right["feedback"]
    assert q["explanation"] == "The scaling keeps the softmax out of its saturated region."
    score, fb = bank.grade(snap(q), {"choice": right["id"]})
    assert score == 1.0 and "variance" in fb


def test_true_false_with_wrong_and_right_feedback():
    q = by_title()["Encoders"]
    assert q["type"] == "truefalse" and q["answer"] is False
    assert q["feedback_true"] == "No: BERT is bidirectional."
    assert q["feedback_false"] == "Correct, BERT has no causal mask."
    assert by_title()["Sun"]["answer"] is True


def test_short_answers_and_partial_credit():
    q = by_title()["Short answer"]
    assert q["type"] == "short" and [a["text"] for a in q["answers"]] == ["four", "4"]
    assert bank.grade(snap(q), {"text": "Four"})[0] == 1.0
    p = by_title()["Partial short"]
    assert bank.grade(snap(p), {"text": "[CLS]"})[0] == 1.0
    score, fb = bank.grade(snap(p), {"text": "cls"})
    assert score == 0.5 and "brackets" in fb


def test_numeric_tolerance_range_multiple_answers():
    pi = snap(by_title()["Numeric tolerance"])
    assert bank.grade(pi, {"value": 3.1418})[0] == 1.0
    assert bank.grade(pi, {"value": 3.1425})[0] == 0.0
    rng = snap(by_title()["Numeric range"])
    assert [bank.grade(rng, {"value": v})[0] for v in (1, 3.3, 5, 5.01, 0)] == [1, 1, 1, 0, 0]
    grant = snap(by_title()["Grant birth"])
    assert bank.grade(grant, {"value": 1822})[0] == 1.0
    score, fb = bank.grade(grant, {"value": 1821})
    assert score == 0.5 and "Half credit" in fb
    assert bank.grade(grant, {"value": 1819})[0] == 0.0
    assert bank.grade(snap(by_title()["Heads"]), {"value": 12})[0] == 1.0


def test_multiple_answer_weights():
    q = by_title()["Multiple answers"]
    assert q["type"] == "multiple" and q["rule"] == "weights"
    s = snap(q)
    assert bank.grade(s, {"choices": ["a", "b"]})[0] == 1.0
    assert bank.grade(s, {"choices": ["a"]})[0] == 0.5
    assert bank.grade(s, {"choices": ["a", "b", "c"]})[0] == 0.0
    assert bank.grade(s, {"choices": ["c"]})[0] == 0.0  # floor 0


def test_partial_credit_single_choice():
    s = snap(by_title()["Partial single"])
    assert bank.grade(s, {"choice": "a"})[0] == 1.0
    assert bank.grade(s, {"choice": "b"}) == (0.5, "A bit high, but it can work.")


def test_escaped_characters():
    q = by_title()["Escapes"]
    assert q["text"] == "Which character starts a GIFT comment line: // or #?"
    # Moodle's text format is not Markdown: "#" shows as written, not as an empty heading.
    assert [bank.render_inline(c["text"]) for c in q["choices"]] == ["//", "#", "="]
    assert q["choices"][1]["feedback"] == "No, # marks feedback."
    b = by_title()["Braces"]
    assert "{x}" in b["text"] and b["type"] == "short"


def test_html_format_marker_is_sanitised():
    q = next(q for q in parse_gift(EXAMPLES.read_text()).questions if "MLM" in q["text"])
    assert "<b>MLM</b>" in q["text"]
    evil = parse_gift('[html]<script>alert(1)</script>Click <a href="javascript:x()">me</a>{T}').questions[0]
    html = bank.render_markdown(evil["text"])
    assert "<script" not in html and "javascript:" not in html


def problems(source):
    """What the importer skipped: listed with the result, or raised when nothing could be imported."""
    try:
        return parse_gift(source).skipped
    except GiftImportErrors as exc:
        return exc.errors


@pytest.mark.parametrize("source, line, message", [
    ("Q1 {=a ~b}\n\nQ2 {=a ~b", 3, "never closed"),
    ("Q1 {=a ~b}\n\n\n// c\nEssay question {}", 5, "essay"),
    ("Match {=a -> 1}", 1, "at least two pairs"),
    ("Match {=a -> 1 =b}", 1, "has no ->"),
    ("No answers here", 1, "no answer block"),
    ("Q {#abc}", 1, "is not a number"),
    ("Q {#5..1}", 1, "min > max"),
    ("Q {~a ~b}", 1, "no answer marked right"),
    ("Q {=a =b ~c}", 1, "several = answers"),
    ("Q {~%50%a ~%30%b ~c}", 1, "add up to 80%"),
    ("Q {~%150%a ~b}", 1, "outside -100..100"),
    ("ok {T}\n\n::t::{=a}", 3, "no text"),
])
def test_errors_name_the_line(source, line, message):
    errs = problems(source)
    assert len(errs) == 1, errs
    err = errs[0]
    assert err.line == line and message in str(err), str(err)


def test_one_question_never_refuses_a_file():
    parsed = parse_gift("Good {T}\n\nBad one {~a}\n\nAlso fine {F}\n\nBad two {#x}")
    assert [q["text"] for q in parsed.questions] == ["Good", "Also fine"]
    assert [e.line for e in parsed.skipped] == [3, 7]
    assert "Bad one" in parsed.skipped[0].describe() and "no answer marked right" in parsed.skipped[0].describe()


def test_nothing_importable_is_an_error_listing_every_line():
    with pytest.raises(GiftImportErrors) as exc:
        parse_gift("Bad one {~a}\n\nEssay {}")
    assert [e.line for e in exc.value.errors] == [1, 3]


def test_command_imports_and_is_idempotent(course, tmp_path):
    from courseplatform.quizzes.models import Quiz

    call_command("import_gift", str(EXAMPLES), "--course", course.slug, "--quiz", "gift-demo", "--title", "GIFT demo")
    quiz = Quiz.objects.get(course=course, slug="gift-demo")
    assert quiz.source == "gift" and quiz.questions.count() == 16 and not quiz.published
    call_command("import_gift", str(EXAMPLES), "--course", course.slug, "--quiz", "gift-demo")
    assert quiz.questions.count() == 16 and set(quiz.questions.values_list("version", flat=True)) == {1}


def test_command_imports_the_rest_and_lists_what_it_skipped(course, tmp_path):
    from io import StringIO

    from courseplatform.quizzes.models import Question, Quiz

    mixed = tmp_path / "mixed.gift"
    mixed.write_text("Fine {T}\n\nBroken {#nope}\n\nAn essay {}\n")
    out, err = StringIO(), StringIO()
    call_command("import_gift", str(mixed), "--course", course.slug, "--quiz", "mixed", stdout=out, stderr=err)
    quiz = Quiz.objects.get(slug="mixed")
    assert list(quiz.questions.values_list("spec__text", flat=True)) == ["Fine"]
    assert "skipped line 3 (“Broken {#nope}”): 'nope' is not a number" in err.getvalue()
    assert "skipped line 5" in err.getvalue() and "essay" in err.getvalue()
    assert "1 new" in out.getvalue() and "2 skipped" in out.getvalue()

    bad = tmp_path / "bad.gift"
    bad.write_text("Broken {#nope}\n")
    with pytest.raises(CommandError, match="nothing was imported"):
        call_command("import_gift", str(bad), "--course", course.slug, "--quiz", "bad", stderr=StringIO())
    assert not Quiz.objects.filter(slug="bad").exists() and Question.objects.count() == 1


def test_command_refuses_to_overwrite_a_bank_quiz(course, quiz):
    with pytest.raises(CommandError, match="comes from a bank file"):
        call_command("import_gift", str(EXAMPLES), "--course", course.slug, "--quiz", quiz.slug)


def test_upload_form(course, instructor, student, client_for):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.urls import reverse

    from courseplatform.quizzes.models import Quiz

    url = reverse("quizzes:import_gift", args=[course.slug])
    assert client_for(student).get(url).status_code == 403
    c = client_for(instructor)
    bad = c.post(url, {"title": "T", "slug": "up", "file": SimpleUploadedFile("q.gift", b"B {#oops}\n\nC {}\n")})
    assert bad.status_code == 200 and "line 3" in bad.content.decode() and "Nothing was imported" in bad.content.decode()
    assert not Quiz.objects.filter(slug="up").exists()
    mixed = c.post(url, {"title": "T", "slug": "mixed", "file": SimpleUploadedFile("q.gift", b"A {T}\n\nB {#oops}\n")},
                   follow=True)
    page = mixed.content.decode()
    assert Quiz.objects.get(slug="mixed").questions.count() == 1
    assert "Skipped 1 question" in page and "line 3 (“B {#oops}”): &#x27;oops&#x27; is not a number" in page
    latin = c.post(url, {"title": "T", "slug": "up", "file": SimpleUploadedFile("q.gift", "Caf\xe9 {T}".encode("latin-1"))})
    assert "not UTF-8" in latin.content.decode()
    ok = c.post(url, {"title": "Uploaded", "slug": "up", "file": SimpleUploadedFile("q.gift", EXAMPLES.read_bytes())})
    assert ok.status_code == 302 and Quiz.objects.get(slug="up").questions.count() == 16
