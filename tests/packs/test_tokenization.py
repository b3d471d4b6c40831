"""The tokenization pack, graded through grader.api.grade with the real sandbox.

Reference full marks, starter zero (.py and .ipynb), every mutant its recorded score and message,
the second solution full marks; the committed vocabulary is what build_vocab.py builds; the
reference agrees with Hugging Face's BertWordPiece tokenizer (trusted side only); and the hostile
cases of this pack: outputs hard-coded for the visible inputs, hard-coded special ids, tokenizer
libraries (imported, or reached dynamically).
"""
from __future__ import annotations

import importlib.util
import json
import random
import string
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from grader.api import grade

PACK = Path(__file__).resolve().parents[2] / "assignments" / "tokenization"
REFERENCE = (PACK / "reference.py").read_text()
EXPECTED = tomllib.loads((PACK / "mutants" / "expected.toml").read_text())
FULL = 20.0


def _grade(source: str | bytes, filename: str = "tokenization.py") -> dict:
    data = source.encode() if isinstance(source, str) else source
    result = grade(PACK, filename, data)
    assert result["max_score"] == FULL
    return result


def _feedback(result: dict) -> str:
    return "\n".join([result["message"]] + [t["message"] for t in result["tests"]])


def _failed(result: dict) -> set[str]:
    return {t["id"] for t in result["tests"] if t["status"] != "passed"}


def _module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _vocab() -> dict:
    tokens = (PACK / "data" / "vocab.txt").read_text(encoding="utf-8").split("\n")
    return {t: i for i, t in enumerate(t for t in tokens if t)}


def test_vocabulary_is_reproducible():
    proc = subprocess.run([sys.executable, str(PACK / "build_vocab.py"), "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    vocab = _vocab()
    assert len(vocab) == 800
    assert list(vocab)[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert {"tokenization", "##ing", "attention"} <= set(vocab)


def test_reference_agrees_with_huggingface_bert_wordpiece():
    """Independent check of the trusted reference (the library is used here only, never in the pack)."""
    tokenizers = pytest.importorskip("tokenizers")
    ref = _module(PACK / "reference.py", "tok_reference")
    vocab = _vocab()
    hf = tokenizers.BertWordPieceTokenizer(vocab, lowercase=True, strip_accents=True, clean_text=True,
                                           handle_chinese_chars=False)
    words = [w for w in (PACK / "data" / "corpus.txt").read_text().split() if "[" not in w]
    alphabet = string.ascii_letters + string.digits + string.punctuation.replace("[", "") + "  \téèüßñ—„“…🙂λ"
    rng = random.Random(0)
    for trial in range(400):
        if trial % 2:
            a = " ".join(rng.choice(words) for _ in range(rng.randint(1, 12)))
        else:
            a = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))
        b = " ".join(rng.choice(words) for _ in range(rng.randint(1, 12)))
        enc = hf.encode(a, b)
        mine = ref.encode(a, vocab, b)
        assert enc.ids == mine["input_ids"], (a, b)
        assert enc.type_ids == mine["token_type_ids"], (a, b)
        hf.enable_truncation(max_length=13, strategy="longest_first")
        enc = hf.encode(a, b)
        hf.no_truncation()
        assert enc.ids == ref.encode(a, vocab, b, max_length=13)["input_ids"], (a, b)


def test_handout_examples_hold():
    ref = _module(PACK / "reference.py", "tok_reference_handout")
    demo = _module(PACK / "starter.py", "tok_starter").DEMO_VOCAB
    assert ref.basic_tokenize("  Naïve café:\tdon't ") == ["naive", "cafe", ":", "don", "'", "t"]
    assert ref.tokenize("Unaffordable tokenization!", demo) == ["un", "##aff", "##ord", "##able", "token", "##ization", "!"]
    assert ref.encode("How are you?", demo, "I am fine.", max_length=12, padding=True)["input_ids"] == \
        [2, 39, 40, 41, 16, 3, 42, 43, 44, 13, 3, 0]
    assert ref.encode("How are you?", demo, "I am fine.", max_length=8)["input_ids"] == [2, 39, 40, 41, 3, 42, 43, 3]


def test_reference_full_marks():
    result = _grade(REFERENCE)
    assert result["status"] == "graded", result["message"]
    assert result["score"] == FULL, _feedback(result)


@pytest.mark.parametrize("name", ["starter.py", "starter.ipynb"])
def test_starter_scores_zero(name):
    filename = "tokenization.ipynb" if name.endswith(".ipynb") else "tokenization.py"
    result = _grade((PACK / name).read_bytes(), filename)
    assert result["status"] == "graded"
    assert result["score"] == 0
    assert "NotImplementedError" in _feedback(result)


@pytest.mark.parametrize("mutant", sorted(EXPECTED))
def test_mutant_score_and_message(mutant):
    result = _grade((PACK / "mutants" / f"{mutant}.py").read_text())
    assert result["score"] == EXPECTED[mutant]["score"], _feedback(result)
    assert EXPECTED[mutant]["message"] in _feedback(result)


def test_every_mutant_file_is_recorded():
    assert {p.stem for p in (PACK / "mutants").glob("*.py")} == set(EXPECTED)


def test_second_solution_full_marks():
    result = _grade((PACK / "solutions" / "trie_arithmetic.py").read_text())
    assert result["score"] == FULL, _feedback(result)


# ------------------------------------------------------------------ hostile and edge cases

def test_outputs_hard_coded_for_the_visible_inputs_get_the_visible_points_only():
    """A student who copies the visible tests' expected outputs into a lookup table passes exactly
    those tests and nothing hidden."""
    drv = _module(PACK / "tests.py", "tok_driver")
    ref = _module(PACK / "reference.py", "tok_reference_table")
    vocab = _vocab()
    table = {
        "basic": {t: ref.basic_tokenize(t) for t in drv.BASIC_VISIBLE},
        "wordpiece": {w: ref.wordpiece(w, vocab) for w in drv.WORDS_VISIBLE},
        "tokenize": {t: ref.tokenize(t, vocab) for t in drv.TOKENIZE_TEXTS},
        "encode": {json.dumps([a, b]): ref.encode(a, vocab, b) for a, b in
                   [("The cat sat on the mat.", None), ("How are you?", "I am fine.")]},
    }
    source = f'''
import json
TABLE = json.loads({json.dumps(json.dumps(table))})

def basic_tokenize(text):
    return TABLE["basic"].get(text, text.split())

def wordpiece(word, vocab, unk_token="[UNK]", max_chars=100):
    return TABLE["wordpiece"].get(word, [word])

def tokenize(text, vocab):
    return TABLE["tokenize"].get(text) or [p for w in basic_tokenize(text) for p in wordpiece(w, vocab)]

def encode(text, vocab, text_pair=None, max_length=None, padding=False):
    hit = TABLE["encode"].get(json.dumps([text, text_pair]))
    return hit or {{"input_ids": [], "token_type_ids": [], "attention_mask": []}}

def encode_batch(texts, vocab, text_pairs=None, max_length=None):
    return {{"input_ids": [], "token_type_ids": [], "attention_mask": []}}
'''
    result = _grade(source)
    visible = sum(t["max_score"] for t in result["tests"] if t["visible"])
    assert visible == 8
    assert result["score"] == visible, _feedback(result)
    assert _failed(result) == {t["id"] for t in result["tests"] if not t["visible"]}


def test_hard_coded_special_ids_fail_the_permuted_vocabulary():
    source = REFERENCE.replace("    ids = [vocab[t] for t in tokens]\n",
                               "    fixed = {PAD: 0, UNK: 1, CLS: 2, SEP: 3}\n"
                               "    ids = [fixed[t] if t in fixed else vocab[t] for t in tokens]\n")
    source = source.replace("ids += [vocab[PAD]] * extra", "ids += [0] * extra")
    assert source != REFERENCE
    result = _grade(source)
    assert _failed(result) == {"encode_permuted_vocab_hidden"}, _feedback(result)
    assert result["score"] == FULL - 2
    assert "have other ids than 0-3" in _feedback(result)


def test_tokenizer_library_import_is_refused():
    source = REFERENCE + '''

def _library_check(text):
    from tokenizers import BertWordPieceTokenizer
    return BertWordPieceTokenizer
'''
    result = _grade(source)
    assert result["score"] == 0
    assert "Your code uses tokenizers, which this assignment does not allow" in _feedback(result)


def test_tokenizer_library_reached_dynamically_fails_at_run_time():
    source = REFERENCE.replace(
        "def basic_tokenize(text: str) -> list[str]:\n",
        "def basic_tokenize(text: str) -> list[str]:\n"
        "    import importlib\n"
        "    importlib.import_module('token' + 'izers')\n")
    result = _grade(source)
    # every test that reaches basic_tokenize fails (wordpiece_visible checks tokenize too); wordpiece alone never does
    assert _failed(result) == {t["id"] for t in result["tests"]} - {"wordpiece_hidden"}
    assert result["score"] == 3, _feedback(result)
    assert "ModuleNotFoundError: import of tokenizers halted" in _feedback(result)


# ------------------------------------------------------------------ issue 16: handout promises and true hints

@pytest.mark.parametrize("mutant, hint", [
    ("hf_bert_basic", "splitting CJK characters apart"),
    ("casefold", "str.casefold() gives"),
    ("nfkd", "NFKD normalisation gives"),
])
def test_hugging_face_habits_the_handout_excludes_lose_points_with_a_true_hint(mutant, hint):
    result = _grade((PACK / "mutants" / f"{mutant}.py").read_text())
    assert "basic_visible" in _failed(result) and hint in _feedback(result), _feedback(result)


def test_dropping_format_characters_is_named_only_when_that_is_the_difference():
    """HF's _clean_text alone (no CJK split): the ZWJ inside the emoji disappears."""
    source = REFERENCE.replace(
        'text = unicodedata.normalize("NFD", text.lower())',
        'text = "".join(c for c in text if c in "\\t\\n\\r" or not unicodedata.category(c).startswith("C"))\n'
        '    text = unicodedata.normalize("NFD", text.lower())')
    assert source != REFERENCE
    result = _grade(source)
    fb = _feedback(result)
    assert "basic_visible" in _failed(result) and "what removing control/format characters gives" in fb, fb
    assert "CJK" not in fb


def test_a_difference_that_is_no_known_mistake_gets_no_hint():
    source = REFERENCE.replace("    return tokens\n", "    return [t.upper() if t == 'hello' else t for t in tokens]\n", 1)
    assert source != REFERENCE
    result = _grade(source)
    first = next(t for t in result["tests"] if t["id"] == "basic_visible")
    assert first["status"] == "failed" and "differs at position 0" in first["message"]
    assert "Hint:" not in first["message"], first["message"]


def test_every_solution_agrees_with_the_reference_on_the_promised_unicode_texts():
    drv = _module(PACK / "tests.py", "tok_driver_unicode")
    ref = _module(PACK / "reference.py", "tok_reference_unicode")
    assert ref.basic_tokenize("我爱NLP。") == ["我爱nlp", "。"]
    assert ref.basic_tokenize("👩\u200d💻\fStraße") == ["👩\u200d💻", "straße"]
    assert ref.basic_tokenize("\ufb01ne ＡＢＣ") == ["\ufb01ne", "ａｂｃ"]
    for path in sorted((PACK / "solutions").glob("*.py")):
        sol = _module(path, f"tok_sol_{path.stem}")
        for text in drv.BASIC_VISIBLE + drv.BASIC_HIDDEN:
            assert sol.basic_tokenize(text) == ref.basic_tokenize(text), (path.name, text)
