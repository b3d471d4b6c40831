"""The generation pack, graded through grader.api.grade with the real sandbox.

Reference full marks, starter zero (.py and .ipynb), every mutant its recorded score, message and
failing tests (each named mistake is told only by a hint computed from the reference with that
mistake applied: checked both ways below), every solution full marks, an independent check of the trusted reference
against Hugging Face's own logits processors and generate(), and the hostile cases specific to
this pack: model.generate (static), a logits warper reached dynamically, and a loop that ignores
the cache (FLOP count).
"""
from __future__ import annotations

import importlib.util
import tomllib
from functools import lru_cache
from pathlib import Path

import pytest
import torch

from grader.api import grade

PACK = Path(__file__).resolve().parents[2] / "assignments" / "generation"
EXPECTED = tomllib.loads((PACK / "mutants" / "expected.toml").read_text())
FULL = 30.0
HIDDEN = {"greedy_hidden", "repetition_penalty_hidden", "top_k_top_p_hidden", "next_token_probs_hidden",
          "cached_hidden"}


@lru_cache(maxsize=None)
def _grade_bytes(data: bytes, filename: str) -> dict:
    result = grade(PACK, filename, data)
    assert result["max_score"] == FULL
    return result


def _grade(source: str | bytes, filename: str = "generation.py") -> dict:
    return _grade_bytes(source.encode() if isinstance(source, str) else source, filename)


def _feedback(result: dict) -> str:
    return "\n".join([result["message"]] + [t["message"] for t in result["tests"]])


def _failed(result: dict) -> set[str]:
    return {t["id"] for t in result["tests"] if t["status"] != "passed"}


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_reference_agrees_with_hugging_face():
    """Independent check of the trusted reference: HF's processors and HF's greedy generate()."""
    from transformers import GPT2Config, GPT2LMHeadModel
    from transformers.generation.logits_process import (RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper,
                                                        TopKLogitsWarper, TopPLogitsWarper)

    ref = _load(PACK / "reference.py", "gen_reference")
    g = torch.Generator().manual_seed(0)
    for trial in range(60):
        logits = torch.randn(3, 40, generator=g) * (1 + trial % 4)
        ids = torch.randint(0, 40, (3, 6), generator=g)
        k = trial % 9
        p = [0.0, 0.3, 0.75, 0.95, 1.0][trial % 5]
        t, rp = 0.6 + 0.1 * (trial % 7), 1.0 + 0.15 * (trial % 4)
        s = RepetitionPenaltyLogitsProcessor(rp)(ids, logits)
        s = TemperatureLogitsWarper(t)(ids, s)
        if k:
            s = TopKLogitsWarper(k)(ids, s)
        if p < 1.0:
            s = TopPLogitsWarper(p)(ids, s)
        torch.testing.assert_close(ref.next_token_probs(logits, ids, t, k, p, rp), s.softmax(-1), atol=1e-6, rtol=0)
    tests = _load(PACK / "tests.py", "gen_tests")
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(**tests.SMALL)).eval()
    prompt = torch.randint(2, 256, (2, 5), generator=g)
    for penalty in (1.0, 1.4):
        hf = model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=12, do_sample=False,
                            repetition_penalty=penalty, eos_token_id=None, pad_token_id=0)
        assert torch.equal(ref.generate(model, prompt, 12, repetition_penalty=penalty), hf)
        assert torch.equal(ref.generate(model, prompt, 12, repetition_penalty=penalty, use_cache=False), hf)


def test_top_p_keeps_the_crossing_token():
    """The handout's worked example: probabilities .5 .3 .15 .05 with top_p = .7 keep two tokens."""
    ref = _load(PACK / "reference.py", "gen_reference")
    logits = torch.tensor([[0.5, 0.3, 0.15, 0.05]]).log()
    kept = ~torch.isneginf(ref.top_k_top_p_filter(logits, top_p=0.7))
    assert kept.tolist() == [[True, True, False, False]]
    assert (~torch.isneginf(ref.top_k_top_p_filter(logits, top_p=0.0))).sum() == 1


def test_reference_full_marks():
    result = _grade((PACK / "reference.py").read_text())
    assert result["status"] == "graded", result["message"]
    assert result["score"] == FULL, _feedback(result)
    assert {t["id"] for t in result["tests"] if not t["visible"]} == HIDDEN
    assert result["engine"]["sandbox"] == "namespaces"
    # the cached loop does ~14x less work than the uncached one, counted in the sandbox
    assert result["metrics"]["cache_flops_ratio"] > 10


@pytest.mark.parametrize("name", ["starter.py", "starter.ipynb"])
def test_starter_scores_zero(name):
    filename = "generation.ipynb" if name.endswith(".ipynb") else "generation.py"
    result = _grade((PACK / name).read_bytes(), filename)
    assert result["status"] == "graded", result["message"]
    assert result["score"] == 0, _feedback(result)
    assert "expected (2, 17)" in _feedback(result)  # greedy_decode returned only the prompt


MUTANT_FAILS = {
    "top_p_excludes_crossing": {"top_p", "top_k_top_p_hidden", "next_token_probs_basic", "next_token_probs_hidden",
                                "top_p_full_vocabulary", "top_k_top_p_leading_dims"},
    "temperature_after_softmax": {"next_token_probs_basic", "next_token_probs_hidden", "sampling"},
    "temperature_multiplies": {"temperature", "next_token_probs_basic", "next_token_probs_hidden", "sampling"},
    "top_k_keeps_k_plus_1": {"top_k", "top_p", "top_k_top_p_leading_dims", "next_token_probs_basic", "sampling"},
    "top_k_drops_ties": {"top_k"},
    "top_p_before_top_k": {"top_p", "top_k_top_p_hidden", "next_token_probs_hidden", "sampling"},
    "top_p_unguarded": {"top_p_full_vocabulary"},
    "filter_in_place": {"top_k", "top_p", "top_k_top_p_hidden", "top_k_top_p_leading_dims", "top_p_full_vocabulary"},
    "filter_dim1": {"top_k_top_p_leading_dims"},
    "penalty_sign_swapped": {"repetition_penalty_basic", "repetition_penalty_hidden", "next_token_probs_hidden",
                             "cached_hidden"},
    "penalty_per_occurrence": {"repetition_penalty_basic", "repetition_penalty_hidden"},
    "sampling_unseeded": {"sampling", "cached_hidden"},
    "cache_position_offset": {"sampling", "cached_matches_uncached", "cached_hidden"},
    "cache_ignored": {"cache_work"},
}

# Each hint that names a mistake, and the only mutant allowed to receive it: a hint shown to any
# other mutant (or to the reference or a solution) would be a false diagnosis.
NAMED_MISTAKES = {
    "stopping before the crossing token": "top_p_excludes_crossing",
    "dividing the probabilities by T": "temperature_after_softmax",
    "multiplied by T": "temperature_multiplies",
    "top-k with k+1 tokens": "top_k_keeps_k_plus_1",
    "keeping exactly k tokens": "top_k_drops_ties",
    "top-p computed on the unfiltered logits": "top_p_before_top_k",
    "two cases swapped": "penalty_sign_swapped",
    "once per occurrence": "penalty_per_occurrence",
    "dividing every context logit": None,
    "filtering before the temperature": None,
    "without the repetition penalty": None,
    "in place": "filter_in_place",
}


def test_every_mutant_is_listed():
    files = {p.stem for p in (PACK / "mutants").glob("*.py")}
    assert files == set(EXPECTED) == set(MUTANT_FAILS)


@pytest.mark.parametrize("name", sorted(MUTANT_FAILS))
def test_mutant_gets_its_score_and_message(name):
    result = _grade((PACK / "mutants" / f"{name}.py").read_text())
    assert result["status"] == "graded", result["message"]
    assert result["score"] == EXPECTED[name]["score"], _feedback(result)
    assert EXPECTED[name]["message"] in _feedback(result)
    assert _failed(result) == MUTANT_FAILS[name], _feedback(result)


@pytest.mark.parametrize("name", sorted(MUTANT_FAILS))
def test_named_mistakes_are_only_told_to_the_mutant_that_makes_them(name):
    feedback = _feedback(_grade((PACK / "mutants" / f"{name}.py").read_text()))
    for phrase, owner in NAMED_MISTAKES.items():
        assert (phrase in feedback) == (owner == name), (phrase, name, feedback)


SOLUTIONS = sorted(p.name for p in (PACK / "solutions").glob("*.py"))


def test_there_are_many_correct_styles():
    assert {"descending_sort.py", "hf_style_filtering.py", "logits_processor_classes.py", "loops.py",
            "searchsorted_nucleus.py"} <= set(SOLUTIONS)


@pytest.mark.parametrize("name", SOLUTIONS)
def test_solution_full_marks(name):
    result = _grade((PACK / "solutions" / name).read_text())
    assert result["score"] == FULL, _feedback(result)


def test_filters_that_drop_tail_tokens_at_top_p_one_fail_on_a_big_vocabulary():
    """The promise "top_p = 1.0 switches top-p off" on GPT-2's 50,257 tokens: the unguarded filter
    passes every small-vocabulary case and fails exactly this one, with a message saying so."""
    result = _grade((PACK / "mutants" / "top_p_unguarded.py").read_text())
    msg = {t["id"]: t for t in result["tests"]}["top_p_full_vocabulary"]["message"]
    assert "top_p=1.0 on a vocabulary of 50,257 tokens filtered" in msg and "Hint:" not in msg


def test_in_place_mutation_is_caught_for_every_transform():
    """The handout: the transforms return new tensors and never modify the input."""
    ref = (PACK / "reference.py").read_text()
    cases = {
        "apply_repetition_penalty": ("    return logits.scatter(-1, input_ids, picked)",
                                     "    logits.scatter_(-1, input_ids, picked)\n    return logits",
                                     "repetition_penalty_basic"),
        "apply_temperature": ("    return logits / temperature", "    return logits.div_(temperature)", "temperature"),
        "next_token_probs": ("    return torch.softmax(scores, dim=-1)",
                             "    logits.copy_(scores.clamp_min(-1e9))\n    return torch.softmax(scores, dim=-1)",
                             "next_token_probs_basic"),
    }
    for fn, (old, new, test_id) in cases.items():
        assert ref.count(old) == 1, old
        result = _grade(ref.replace(old, new))
        msg = {t["id"]: t for t in result["tests"]}[test_id]["message"]
        assert f"{fn} modified its input `logits` in place" in msg, (fn, msg)


def test_hf_generate_is_refused():
    source = (PACK / "reference.py").read_text().replace(
        "def greedy_decode(model, input_ids, max_new_tokens):\n",
        "def greedy_decode(model, input_ids, max_new_tokens):\n"
        "    return model.generate(input_ids, max_new_tokens=max_new_tokens, do_sample=False)\n\n\n"
        "def _unused(model, input_ids, max_new_tokens):\n", 1)
    result = _grade(source)
    # `.generate` on an object the submission did not define (the driver's model) is the library's:
    # the scope-aware source scan refuses it before anything runs (the sandbox stub is the second
    # layer, tested with a dynamic look-up in test_hf_warper_reached_dynamically_is_blocked)
    assert result["score"] == 0 and _failed(result) == {t["id"] for t in result["tests"]}
    by_id = {t["id"]: t for t in result["tests"]}
    assert "Your code uses model.generate, which this assignment does not allow" in by_id["greedy_basic"]["message"]


def test_hf_warper_reached_dynamically_is_blocked():
    source = (PACK / "reference.py").read_text().replace(
        "def top_k_top_p_filter(logits, top_k=0, top_p=1.0):\n",
        "def top_k_top_p_filter(logits, top_k=0, top_p=1.0):\n"
        "    import importlib\n"
        "    mod = importlib.import_module('transformers.generation.' + 'logits_process')\n"
        "    if top_k:\n"
        "        logits = getattr(mod, 'TopK' + 'LogitsWarper')(top_k)(None, logits)\n"
        "    return _own(logits, 0, top_p)\n\n\n"
        "def _own(logits, top_k=0, top_p=1.0):\n", 1)
    result = _grade(source)
    assert "top_k" in _failed(result) and "greedy_basic" not in _failed(result)
    assert "transformers.TopKLogitsWarper is not allowed" in _feedback(result)
    assert result["score"] < FULL


def test_sampler_that_ignores_the_seed_is_caught():
    """Sampling from the global RNG: right distribution, but not reproducible."""
    source = (PACK / "reference.py").read_text().replace(
        "            generator.manual_seed(int(seed))", "            generator.seed()")
    result = _grade(source)
    assert _failed(result) == {"sampling", "cached_hidden"}, _feedback(result)
    assert "a second run with the same seed" in _feedback(result)
