"""Matching questions end to end (bank, Moodle GIFT, attempt, autosave, partial credit per pair, review,
regrade, statistics) and a GIFT file of our own with every construct of the format."""
from __future__ import annotations

import tomllib
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from courseplatform.quizzes import bank, services
from courseplatform.quizzes.gift import parse_gift
from courseplatform.quizzes.statistics import quiz_statistics
from courseplatform.quizzes.tomlwrite import question_to_toml

# Our own questions on the course's topics, using every construct of the GIFT format (see fixtures/README.md).
EVERY = Path(__file__).parent / "fixtures" / "gift_every_construct.txt"

MATCH_BANK = r'''
[quiz]
title = "Families"
slug = "families"
review = "immediately"
max_attempts = 2

[[question]]
id = "families"
type = "matching"
points = 3
text = "Match each model with its family."
pairs = [
  { left = "BERT", right = "encoder-only" },
  { left = "GPT-2", right = "decoder-only" },
  { left = "T5", right = "encoder-decoder" },
]
distractors = ["recurrent"]
explanation = "BERT reads both ways, GPT-2 is causal, T5 has both halves."

[[question]]
id = "tf"
type = "truefalse"
text = "BERT is bidirectional."
answer = true
'''


def spec_of(text: str = MATCH_BANK, index: int = 0) -> dict:
    return bank.parse_bank(text, where="t.toml")["questions"][index]


def snap(spec, seed=1, shuffle=True):
    return bank.build_snapshot(spec, param_seed=0, choice_seed=seed, shuffle_choices=shuffle)


def option_for(s, right_text):
    return next(o["id"] for o in s["options"] if o["text"] == right_text)


# --------------------------------------------------------------------------- every GIFT construct
def every_construct():
    return parse_gift(EVERY.read_text())


def line_of(start: str) -> int:
    return next(n for n, line in enumerate(EVERY.read_text().split("\n"), 1) if line.startswith(start))


def test_every_construct_file_imports_all_but_the_essay_and_the_description():
    parsed = every_construct()
    qs = parsed.questions
    assert len(qs) == 46 and len({q["id"] for q in qs}) == 46
    kinds = {}
    for q in qs:
        kinds[q["type"]] = kinds.get(q["type"], 0) + 1
    assert kinds == {"single": 14, "short": 11, "numeric": 8, "truefalse": 7, "matching": 4, "multiple": 2}
    # The only two skipped items are the ones the importer does not take, each with its own line.
    assert [(e.line, e.message) for e in parsed.skipped] == [
        (line_of("::Essay::"), "essay questions ({}) are not supported"),
        (line_of("This line only introduces"), "no answer block {...} (description-only items are not imported)"),
    ]
    assert parsed.skipped[0].describe().startswith(f"line {line_of('::Essay::')} (“::Essay::Explain in your own")
    matching = [q for q in qs if q["type"] == "matching"]
    assert [[(p["left"], p["right"]) for p in q["pairs"]] for q in matching] == [
        [("BERT", "encoder-only"), ("GPT-2", "decoder-only"), ("T5", "encoder-decoder")],
        # extra spaces around -> are layout, not text
        [("BLEU", "machine translation"), ("ROUGE-L", "summarisation"), ("perplexity", "language modelling"),
         ("exact match", "extractive question answering")],
        # the compact form =a->b, the question text over two lines
        [("WordPiece", "BERT"), ("byte-level BPE", "GPT-2"), ("SentencePiece", "T5")],
        [("accuracy", "0 to 1"), ("perplexity", "1 to infinity"), ("cross-entropy loss", "0 to infinity")],
    ]
    assert matching[2]["text"] == "Match each tokenizer with a model\nthat uses it."
    assert [q.get("distractors", []) for q in matching] == [[], [], [], ["-1 to 1"]]
    assert matching[3]["explanation"].startswith("Perplexity is at least 1")


def test_every_construct_lands_where_it_should():
    qs = every_construct().questions
    by_id = {q["id"]: q for q in qs}
    titled = {q["title"]: q for q in qs if q["title"]}
    # ::title:: with the text on the same line, on the next line, after a space; a repeated title gets -2.
    assert titled["Context length"]["text"] == "BERT-base reads at most how many\ntokens in one input?"
    assert titled["Head dimension"]["text"] == "How many dimensions does each head of GPT-2 small use (768 / 12)?"
    assert [q["id"] for q in qs if q["title"] == "Positional information"] == [
        "positional-information", "positional-information-2"]
    assert by_id["positional-information-2"]["text"] == "BERT's position embeddings are"
    # Missing word: the answer block in the middle, or followed by a lone "." (also for numeric answers).
    assert by_id["masking-rate"]["text"] == (
        "During pretraining, BERT selects \\_\\_\\_\\_\\_ of the input tokens for prediction.")
    assert by_id["tokenizer-of-gpt-2-short-answer"]["text"].endswith("\\_\\_\\_\\_\\_ .")
    assert qs[17]["type"] == "numeric" and "perplexity of \\_\\_\\_\\_\\_ on any text" in qs[17]["text"]
    # True/false: {TRUE} {T} {FALSE} {F}, no feedback, the wrong-answer feedback only, or both.
    tf = [(q["answer"], q["feedback_true"], q["feedback_false"]) for q in qs if q["type"] == "truefalse"]
    assert tf == [
        (True, "", ""), (False, "", ""), (True, "", ""), (True, "", ""),
        (False, "No: BERT is pretrained with masked language modelling.", ""),
        (False, "No: exact match is all or nothing.", "Right: any difference scores 0."),
        (True, "Right.", "No: it is exactly that share."),
    ]
    # Numeric: exact, value:tolerance, min..max, several answers with partial credit.
    assert [a.get("tolerance") for a in qs[4]["answers"]] == [1.0]
    pi = snap(qs[14])
    assert bank.grade(pi, {"value": 0.6934})[0] == 1.0 and bank.grade(pi, {"value": 0.6937})[0] == 0.0
    rng = snap(qs[15])
    assert [bank.grade(rng, {"value": v})[0] for v in (0.693, 0.6935, 0.694, 0.695)] == [1, 1, 1, 0]
    year = snap(qs[16])
    assert [bank.grade(year, {"value": v})[0] for v in (2017, 2018, 2016, 2015)] == [1.0, 0.5, 0.5, 0.0]
    # Percentage weights and penalties; multiple answers.
    assert [c["weight"] for c in by_id["positional-information"]["choices"]] == [0.0, 0.25, 0.5, 1.0]
    assert [a["weight"] for a in by_id["positional-information-2"]["answers"]] == [1.0, 0.75, 0.25]
    assert [q["rule"] for q in qs if q["type"] == "multiple"] == ["weights", "weights"]
    penalties = next(q for q in qs if "wrong pick costs" in q["text"])
    assert [c["weight"] for c in penalties["choices"]] == [-0.5, 0.5, 0.5, -0.5]
    assert bank.grade(snap(penalties), {"choices": ["a", "b"]})[0] == 0.0
    assert bank.grade(snap(penalties), {"choices": ["b", "c"]})[0] == 1.0
    # Feedback after padding spaces keeps only its words.
    assert [c["feedback"] for c in qs[39]["choices"]][0] == "the sequences become very long"
    # Formats: [markdown], [html] (sanitised, structure kept), [plain] (escaped), [moodle] (no Markdown lists).
    assert "<strong>later</strong>" in bank.render_markdown(qs[23]["text"])
    assert titled["F1 in HTML"]["text"] == "<p>F1 is the <b>harmonic</b> mean of precision and what?</p>"
    assert titled["F1 in HTML"]["answers"][0]["feedback"] == "<i>Yes.</i>"
    assert "&lt;b&gt; starts bold text" in bank.render_markdown(titled["Plain text"]["text"])
    assert [bank.render_inline(c["text"]) for c in titled["Log of one"]["choices"]] == ["1", "0", "- 1"]
    # Escapes: \= at the start of an answer, \{ \} in the text, \n as a new line.
    assert [c["text"] for c in qs[33]["choices"]] == ["= n", "= n²", "= 2n"]
    assert qs[35]["text"] == "The set {BERT, RoBERTa, ALBERT} holds models of which kind?"
    assert qs[36]["text"] == "Which token separates the two sentences of a BERT input?\nWrite it with its brackets."
    # $CATEGORY applies to the questions after it until the next one; general feedback ####.
    assert [(q["id"], q["topic"]) for q in qs if q.get("topic")] == [
        ("why-scale", "LLM course/Attention"), ("exact-match", "LLM course/Metrics"),
        ("accuracy", "LLM course/Metrics"), ("metric-ranges", "LLM course/Metrics")]
    assert titled["Why scale"]["explanation"].startswith("Dot products of d_k-dimensional vectors")


def test_feedback_continuation_lines_are_normalised():
    qs = {q["title"]: q for q in every_construct().questions if q["title"]}
    numeric = qs["Head dimension"]
    assert numeric["answers"][1]["feedback"] == "It is exactly 768 / 12 = 64.\nYou get half credit for being close."
    control = qs["Escapes in GIFT"]
    right = next(c for c in control["choices"] if c["correct"])
    assert right["text"] == ";"
    assert right["feedback"].splitlines() == [
        "Right! A semicolon means nothing to GIFT,",
        "so it is written as it is. Each of the others",
        "must follow a backslash when it is part of the text",
        "(as in this question).",
    ]
    # Every control character shows as written (a lone "#" is not an empty Markdown heading); \\ is a backslash.
    assert [bank.render_inline(c["text"]) for c in control["choices"]] == ["~", "=", "#", "{", "}", ":", "\\", ";"]
    assert control["choices"][2]["feedback"] == "\\# starts feedback."  # shown as "# starts ...", not a heading
    score, feedback = bank.grade(snap(control, shuffle=False), {"choice": right["id"]})
    assert score == 1.0 and "\n              " not in feedback


def test_the_file_and_an_unsupported_construct_import_the_rest_with_lines():
    text = EVERY.read_text()
    extra = "\n\n::Essay 2::Compare BERT and GPT-2 in a paragraph.{}\n\nTrue or false {T}\n"
    n_lines = text.count("\n")
    parsed = parse_gift(text + extra)
    assert len(parsed.questions) == 47 and parsed.questions[-1]["text"] == "True or false"
    assert [e.line for e in parsed.skipped] == [line_of("::Essay::"), line_of("This line only"), n_lines + 3]
    assert "essay questions ({}) are not supported" in parsed.skipped[2].message


def test_an_unclosed_answer_block_does_not_swallow_the_questions_after_it():
    parsed = parse_gift("First {T}\n\nBroken {=a ~b\n\nThird {F}\n\nFourth {=x -> 1 =y -> 2}\n")
    assert [q["text"] for q in parsed.questions] == ["First", "Third", "Fourth"]
    assert [(e.line, "never closed" in e.message) for e in parsed.skipped] == [(3, True)]


def test_gift_matching_with_distractor_and_general_feedback():
    q = parse_gift("::M::Pair them {\n =cat -> mammal\n =trout -> fish\n = -> bird\n ####Vertebrates.\n}").questions[0]
    assert q["type"] == "matching" and q["distractors"] == ["bird"] and q["explanation"] == "Vertebrates."
    assert [o["text"] for o in sorted(snap(q)["options"], key=lambda o: o["text"])] == ["bird", "fish", "mammal"]
    # "~" makes it multiple choice, as in Moodle, even with a "->" in an answer.
    assert parse_gift("Arrows {=a -> b ~c}").questions[0]["type"] == "single"


def test_command_imports_the_every_construct_file(course):
    from courseplatform.quizzes.models import Quiz

    out, err = StringIO(), StringIO()
    call_command("import_gift", str(EVERY), "--course", course.slug, "--quiz", "gift-all", stdout=out, stderr=err)
    quiz = Quiz.objects.get(course=course, slug="gift-all")
    assert quiz.questions.count() == 46 and quiz.questions.filter(kind="matching").count() == 4
    assert "46 new" in out.getvalue() and "2 skipped" in out.getvalue()
    assert f"skipped line {line_of('::Essay::')} " in err.getvalue()
    assert f"skipped line {line_of('This line only')} " in err.getvalue()


# --------------------------------------------------------------------------- the bank format
def test_bank_matching_spec_and_editor_round_trip():
    spec = spec_of()
    assert [(p["id"], p["left"], p["right"]) for p in spec["pairs"]] == [
        ("a", "BERT", "encoder-only"), ("b", "GPT-2", "decoder-only"), ("c", "T5", "encoder-decoder")]
    assert spec["distractors"] == ["recurrent"]
    again = bank.validate_question(tomllib.loads(question_to_toml(spec))["question"][0])
    assert bank.spec_hash(again) == bank.spec_hash(spec)


@pytest.mark.parametrize("pairs, extra, message", [
    ('[{ left = "a", right = "1" }]', "", "at least two"),
    ('[{ left = "a", right = "1" }, { left = "a", right = "2" }]', "", "appears twice"),
    ('[{ left = "a", right = "1" }, { left = "b" }]', "", "needs a left and a right"),
    ('[{ left = "a", right = "1" }, { left = "b", right = "1" }]', "", "at least two different right answers"),
    ('[{ left = "a", right = "1" }, { left = "b", right = "2", score = 1 }]', "", "unknown keys"),
    ('[{ left = "a", right = "1" }, { left = "b", right = "2" }]', 'distractors = ["1"]', "also a right answer"),
])
def test_bank_matching_errors(pairs, extra, message):
    text = f'[[question]]\nid = "m"\ntype = "matching"\ntext = "Match"\npairs = {pairs}\n{extra}\n'
    with pytest.raises(bank.BankError, match=message):
        bank.parse_bank(text, where="t.toml")


def test_snapshot_shuffles_answers_per_attempt_and_hides_the_pairing():
    spec = spec_of()
    orders = {tuple(o["text"] for o in snap(spec, seed)["options"]) for seed in range(12)}
    assert len(orders) > 3  # shuffled with the seed ...
    assert snap(spec, 5)["options"] == snap(spec, 5)["options"]  # ... and the same again for the same attempt
    s = snap(spec, 5)
    assert {o["text"] for o in s["options"]} == {"encoder-only", "decoder-only", "encoder-decoder", "recurrent"}
    # The answers' ids come from their text only: nothing on the page tells which item an answer is for.
    assert all(o["id"] == bank.match_option_id(o["text"]) for o in s["options"])
    assert sorted(st["id"] for st in snap(spec, 5, shuffle=False)["stems"]) == ["a", "b", "c"]


def test_grading_gives_partial_credit_per_pair():
    s = snap(spec_of())
    enc, dec, both, rnn = (option_for(s, t) for t in ("encoder-only", "decoder-only", "encoder-decoder", "recurrent"))
    assert bank.grade(s, {"matches": {"a": enc, "b": dec, "c": both}})[0] == 1.0
    assert bank.grade(s, {"matches": {"a": enc, "b": both, "c": dec}})[0] == pytest.approx(1 / 3)
    assert bank.grade(s, {"matches": {"a": enc, "b": dec}})[0] == pytest.approx(2 / 3)
    assert bank.grade(s, {"matches": {"a": rnn, "b": rnn, "c": rnn}})[0] == 0.0
    assert bank.grade(s, None)[0] == 0.0


def test_clean_response_takes_one_answer_per_item():
    s = snap(spec_of())
    enc, dec = option_for(s, "encoder-only"), option_for(s, "decoder-only")
    assert bank.clean_response(s, {"match": [f"a:{enc}", "", f"c:{dec}"]}) == {"matches": {"a": enc, "c": dec}}
    assert bank.clean_response(s, {"match": ["", "", ""]}) is None
    for bad in ([f"z:{enc}"], ["a:nope"], [f"a:{enc}", f"a:{dec}"], ["a"], [f"a:{enc}"] * 4):
        with pytest.raises(bank.AnswerError):
            bank.clean_response(s, {"match": bad})


# --------------------------------------------------------------------------- taking, review, statistics
@pytest.fixture
def match_quiz(make_quiz):
    now = timezone.now()
    return make_quiz(MATCH_BANK, opens_at=now - timedelta(hours=1), closes_at=now + timedelta(days=1))


def _url(name, course, *args):
    return reverse(f"quizzes:{name}", args=[course.slug, *args])


def _start(client, course, quiz):
    from courseplatform.quizzes.models import Attempt

    assert client.post(_url("start", course, quiz.slug)).status_code == 302
    return Attempt.objects.filter(quiz=quiz).order_by("-pk").first()


def test_attempt_autosave_submit_review_and_statistics(course, match_quiz, student, other_student, ta, client_for):
    c = client_for(student)
    attempt = _start(c, course, match_quiz)
    item = attempt.items.get(question__key="families")
    s = item.snapshot
    enc, dec, both = (option_for(s, t) for t in ("encoder-only", "decoder-only", "encoder-decoder"))

    page = c.get(_url("take", course, attempt.pk)).content.decode()
    # One menu per item, each with a label naming its item, answers in the attempt's shuffled order.
    for stem in s["stems"]:
        assert f'<label class="match-left" for="q{item.pk}-{stem["id"]}">' in page
        assert f'id="q{item.pk}-{stem["id"]}" name="q{item.pk}"' in page
    positions = [page.index(f'value="a:{o["id"]}"') for o in s["options"]]
    assert positions == sorted(positions)

    save = c.post(_url("answer", course, attempt.pk, item.pk), {f"q{item.pk}": [f"a:{enc}", "", f"c:{dec}"]},
                  HTTP_HX_REQUEST="true")
    assert save.status_code == 200 and "Saved" in save.content.decode()
    item.refresh_from_db()
    assert item.response == {"matches": {"a": enc, "c": dec}}
    page = c.get(_url("take", course, attempt.pk)).content.decode()  # a reload shows the saved choices
    assert f'value="a:{enc}" selected' in page and f'value="c:{dec}" selected' in page
    assert 'value="b:' in page and f'value="b:{dec}" selected' not in page
    bad = c.post(_url("answer", course, attempt.pk, item.pk), {f"q{item.pk}": ["a:forged"]}, HTTP_HX_REQUEST="true")
    assert "not part of this question" in bad.content.decode()
    item.refresh_from_db()
    assert item.response == {"matches": {"a": enc, "c": dec}}  # a refused answer keeps the saved one

    # The submit carries the form's menus: two of three pairs right = 2 of 3 points.
    r = c.post(_url("submit", course, attempt.pk), {f"q{item.pk}": [f"a:{enc}", f"b:{dec}", f"c:{enc}"]})
    assert r.status_code == 302
    attempt.refresh_from_db()
    item.refresh_from_db()
    assert item.score == pytest.approx(2.0) and attempt.score == pytest.approx(2.0)
    review = c.get(_url("result", course, attempt.pk)).content.decode()
    assert review.count('data-testid="match-review-row"') == 3
    assert "correct: <strong>encoder-decoder</strong>" in review and "is-partial" in review

    # A second student matches everything right.
    c2 = client_for(other_student)
    a2 = _start(c2, course, match_quiz)
    i2 = a2.items.get(question__key="families")
    s2 = i2.snapshot
    values = [f"{k}:{v}" for k, v in s2["key"].items()]
    c2.post(_url("submit", course, a2.pk), {f"q{i2.pk}": values})
    i2.refresh_from_db()
    assert i2.score == pytest.approx(3.0)

    row = next(r for r in quiz_statistics(match_quiz).rows if r["q"].key == "families")
    assert [(p["id"], p["right_count"], p["n"]) for p in row["pairs"]] == [("a", 2, 2), ("b", 2, 2), ("c", 1, 2)]
    assert row["pairs"][2]["wrong_top"] == {"text": "encoder-only", "count": 1}
    assert row["percent_correct"] == 50.0
    stats = client_for(ta).get(_url("stats", course, match_quiz.slug)).content.decode()
    assert stats.count('data-testid="pair-stats"') == 3 and "1 / 2" in stats and "encoder-only (1×)" in stats


def test_regrade_keeps_the_order_and_the_matches_that_still_exist(course, match_quiz, student, instructor):
    attempt = services.start_attempt(match_quiz, student)
    item = attempt.items.get(question__key="families")
    s = item.snapshot
    matches = {k: v for k, v in s["key"].items()}
    services.save_answer(attempt.pk, item.pk, {"match": [f"{k}:{v}" for k, v in matches.items()]})
    services.submit_attempt(attempt.pk)
    item.refresh_from_db()
    assert item.score == 3.0
    # The instructor replaces T5 by BART (same answer) and renames GPT-2's answer.
    q = item.question
    spec = dict(q.spec, pairs=[{"id": "a", "left": "BERT", "right": "encoder-only"},
                               {"id": "b", "left": "GPT-2", "right": "causal decoder"},
                               {"id": "d", "left": "BART", "right": "encoder-decoder"}])
    services.update_question(q, bank.validate_question(spec))
    services.regrade_quiz(match_quiz)
    item.refresh_from_db()
    new = item.snapshot
    assert [st["id"] for st in new["stems"]] == [st["id"] for st in s["stems"] if st["id"] != "c"] + ["d"]
    assert item.response == {"matches": {"a": matches["a"]}}
    assert item.score == pytest.approx(1.0)


def test_hostile_matching_text_renders_inert_everywhere(course, instructor, student, client_for):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from courseplatform.quizzes.models import Quiz
    from tests.security.test_content import assert_inert

    gift = ("::Hostile::<script>alert('xss')</script> Match them {\n"
            "=<img src\\=x onerror\\=alert(1)> -> <script>alert(2)</script>\n"
            "=[click me](javascript\\:alert(3)) -> <b onclick\\=\"alert(4)\">bold</b>\n"
            "= -> <svg onload\\=alert(5)>\n}\n")
    prof = client_for(instructor)
    r = prof.post(_url("import_gift", course), {"file": SimpleUploadedFile("m.gift", gift.encode()), "title": "H",
                                                 "slug": "hostile"})
    assert r.status_code == 302, r.content[:400]
    quiz = Quiz.objects.get(course=course, slug="hostile")
    now = timezone.now()
    quiz.published, quiz.review = True, "immediately"
    quiz.opens_at, quiz.closes_at = now - timedelta(hours=1), now + timedelta(hours=1)
    quiz.save()
    c = client_for(student)
    attempt = _start(c, course, quiz)
    item = attempt.items.get()
    pages = [c.get(_url("take", course, attempt.pk))]
    c.post(_url("submit", course, attempt.pk), {f"q{item.pk}": [f"{k}:{v}" for k, v in item.snapshot["key"].items()]})
    item.refresh_from_db()
    assert item.score == 1.0
    pages += [c.get(_url("result", course, attempt.pk)), prof.get(_url("stats", course, quiz.slug)),
              prof.get(_url("result", course, attempt.pk))]
    for page in pages:
        assert page.status_code == 200
        assert_inert(page.content)
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in pages[0].content.decode()  # a menu entry shows as text
