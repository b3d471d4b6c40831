from courseplatform.projects import litreview

from .conftest import GOOD_REVIEW


def test_complete_review_passes():
    r = litreview.check(GOOD_REVIEW, 2)
    assert r.ok, r.problems
    assert r.complete_sources == 2
    assert [s.title for s in r.sources] == ["Attention Is All You Need", "BERT"]
    assert r.sources[0].fields["Method"].startswith("Encoder-decoder")


def test_too_few_sources_reported():
    r = litreview.check(GOOD_REVIEW, 3)
    assert not r.ok
    assert r.problems == ["2 complete source(s) of the 3 required (2 section(s) found)."]


def test_missing_fields_named_per_source():
    text = GOOD_REVIEW.replace("**Method:** Masked language modelling and next sentence prediction pretraining.\n", "")
    text = text.replace("**Outcome:** Better BLEU", "**Outcome:** \n\nBetter BLEU")
    r = litreview.check(text, 2)
    assert not r.ok
    assert r.sources[0].missing == ["Outcome"]
    assert r.sources[1].missing == ["Method"]
    assert any(p.startswith("Source 2 (BERT): missing Method") for p in r.problems)
    assert any(p.startswith("Source 1 (Attention Is All You Need): missing Outcome") for p in r.problems)


def test_no_sources_and_template_placeholders_fail():
    assert litreview.check("just some notes", 2).problems[0].startswith("No sources found")
    r = litreview.check(litreview.TEMPLATE, 2)
    assert not r.ok and r.complete_sources == 0
    assert any("needs a title" in p for p in r.problems)


def test_accepted_field_spellings_and_continuation_lines():
    text = """## Source: GPT-2
**Objective**: Show that language models learn tasks without supervision.
Method: A 1.5B parameter decoder trained on WebText,
  continued on the next line.
- **Outcome:** Zero-shot results on several benchmarks.

## Source: LoRA
__Objective:__ Adapt big models cheaply to new tasks.
**method:** Low-rank updates to the attention projections.
**OUTCOME:** Same quality with far fewer trainable parameters.
"""
    r = litreview.check(text, 2)
    assert r.ok, r.problems
    assert "continued on the next line" in r.sources[0].fields["Method"]


def test_too_short_field_and_other_heading_ends_section():
    text = """## Source: A
**Objective:** ok.
**Method:** three words here
**Outcome:** three words here

## Notes
**Objective:** this belongs to no source at all
"""
    r = litreview.check(text, 1)
    assert r.sources[0].missing == ["Objective"]
    assert len(r.sources) == 1
