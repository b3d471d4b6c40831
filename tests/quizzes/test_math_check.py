"""Formulas the site cannot typeset are refused by sync_course with the question and the line
(issue 28, item 5): TeX outside $...$ (a `{{w:bmatrix}}` placeholder written in plain text showed
a raw \\begin{bmatrix} to students), and commands or environments the shipped KaTeX lacks."""
from __future__ import annotations

import io
from pathlib import Path

import pytest

from courseplatform.core.hooks import PartsFailed
from courseplatform.quizzes import bank, mathcheck
from courseplatform.quizzes.models import Quiz
from courseplatform.quizzes.sync import sync

pytestmark = pytest.mark.django_db
REPO = Path(__file__).resolve().parents[2]

BANK = r"""[quiz]
title = "Math"
slug = "math"

[[question]]
id = "fine"
type = "numeric"
text = 'A formula $\frac{1}{\sqrt{d_k}} QK^\top$ and money \$5, with `\n` in code.'
answer = 1
explanation = '$$\begin{bmatrix} 1 & 2 \end{bmatrix}$$'

[[question]]
id = "softmax-row"
type = "numeric"
text = 'The row is $x = {{x:bmatrix}}$.'
answer = "x[0]"
explanation = '''
The first entry.
Its softmax is {{x:bmatrix}}, written outside the dollars.
'''
[question.params]
x = { int = [1, 3], size = [2] }
"""


def _sync(course, tmp_path, text):
    (tmp_path / "quizzes").mkdir(exist_ok=True)
    (tmp_path / "quizzes" / "math.toml").write_text(text)
    out = io.StringIO()
    try:
        return sync(course, tmp_path, out), out.getvalue()
    except PartsFailed as failed:  # a broken bank is loud (the sync hook raises, with what it did)
        return failed.result, out.getvalue()


def test_tex_outside_math_is_a_sync_error_naming_the_question_and_line(course, tmp_path):
    summary, out = _sync(course, tmp_path, BANK)
    assert len(summary["errors"]) == 1, summary
    error = summary["errors"][0]
    assert "[softmax-row]" in error and "line 19" in error and "explanation" in error, error
    assert "\\begin{bmatrix}" in error and "outside $...$" in error
    assert "ERROR" in out and not Quiz.objects.filter(course=course, slug="math").exists()
    fixed = BANK.replace("Its softmax is {{x:bmatrix}}", "Its softmax is $s = {{x:bmatrix}}$")
    summary, _ = _sync(course, tmp_path, fixed)
    assert not summary["errors"] and Quiz.objects.get(course=course, slug="math").questions.count() == 2


@pytest.mark.parametrize("bad, expect", [
    (r"$\softmax(x)$", r"KaTeX does not know \softmax"),
    (r"$\begin{bmatrix} 1 \end{pmatrix}$", r"\end{pmatrix} without its \begin{pmatrix}"),
    (r"$\begin{foomatrix} 1 \end{foomatrix}$", "no environment {foomatrix}"),
    (r"$\frac{1}{2$", "unbalanced braces"),
])
def test_formulas_katex_cannot_typeset_are_refused(course, tmp_path, bad, expect):
    text = BANK.replace(r"$\frac{1}{\sqrt{d_k}} QK^\top$", bad).replace(
        "Its softmax is {{x:bmatrix}}", "Its softmax is $s = {{x:bmatrix}}$")
    with pytest.raises(bank.BankError) as exc:
        bank.parse_bank(text, where="math.toml")
    assert expect in str(exc.value) and "[fine] line 8: text:" in str(exc.value), str(exc.value)


def test_the_vocabulary_comes_from_the_shipped_katex():
    commands, environments = mathcheck.katex_vocabulary()
    assert {"frac", "sqrt", "top", "qquad", "mathrm", "varepsilon", "operatorname"} <= commands
    assert "softmax" not in commands
    assert {"bmatrix", "pmatrix", "aligned", "cases"} <= environments


def test_every_shipped_bank_typesets_and_the_attention_explanation_is_math(course):
    for path in sorted((REPO / "assignments" / "quizzes").glob("*.toml")):
        bank.load_bank_file(path)  # raises on anything KaTeX cannot typeset
    parsed = bank.load_bank_file(REPO / "assignments" / "quizzes" / "attention.toml")
    spec = next(q for q in parsed["questions"] if q["id"] == "attention-weight-param")
    snap = bank.build_snapshot(spec, param_seed=3, choice_seed=0, shuffle_choices=False)
    assert not mathcheck.html_problems(snap["explanation_html"])
    assert '<span class="math inline">$w = \\begin{bmatrix}' in snap["explanation_html"]
