"""Trusted driver of the tokenization pack.

Everything here is compared exactly (token strings, ids, masks): tokenization is discrete, there
is no tolerance to choose, and the outputs do not depend on the device or on floating point.

The main vocabulary is data/vocab.txt (800 entries, built by build_vocab.py from data/corpus.txt;
`python build_vocab.py --check` verifies it). Hidden cases also use vocabularies made here: a tiny
one where longest and shortest match differ at every step, and a permuted copy of the main one whose
special tokens do not have the ids 0-4 (a submission that hard-codes [CLS] = 2 fails it).
"""
from __future__ import annotations

import random
from functools import lru_cache

from grader import compare
from grader.driver import Fail, StudentError, case

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# Tokenizer libraries are forbidden by the [forbid] table of assignment.toml (enforced by the engine).


@lru_cache(maxsize=4)
def _vocab_file(path: str) -> dict:
    with open(path, encoding="utf-8") as fh:
        tokens = [line.rstrip("\n") for line in fh if line.rstrip("\n")]
    return {t: i for i, t in enumerate(tokens)}


def _vocab(ctx) -> dict:
    return dict(_vocab_file(str(ctx.pack_dir / "data" / "vocab.txt")))


def _permuted(ctx) -> dict:
    """The main vocabulary with shuffled ids; the special tokens get the five highest ids."""
    vocab = _vocab(ctx)
    rest = [t for t in vocab if t not in SPECIALS]
    random.Random(ctx.seed).shuffle(rest)
    order = rest + ["[SEP]", "[MASK]", "[PAD]", "[CLS]", "[UNK]"]
    return {t: i for i, t in enumerate(order)}


TINY = {t: i for i, t in enumerate(
    ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "ab", "abc", "abcd", "b", "c", "d", "##a", "##b",
     "##c", "##d", "##ab", "##bc", "##cd", "##abc", "##bcd", "##dd", "x", "xy", "##y", "##z", "##yz"])}


# ------------------------------------------------------------------ known mistakes (diagnosis only)

def _wp_shortest(word, vocab, unk="[UNK]", max_chars=100):
    if len(word) > max_chars:
        return [unk]
    out, start = [], 0
    while start < len(word):
        for end in range(start + 1, len(word) + 1):
            cand = ("##" if start else "") + word[start:end]
            if cand in vocab:
                out.append(cand)
                start = end
                break
        else:
            return [unk]
    return out


def _wp_nohash(word, vocab, unk="[UNK]", max_chars=100):
    if len(word) > max_chars:
        return [unk]
    out, start = [], 0
    while start < len(word):
        for end in range(len(word), start, -1):
            if word[start:end] in vocab:
                out.append(word[start:end])
                start = end
                break
        else:
            return [unk]
    return out


def _wp_diagnose(got, word, vocab, kw):
    if got == _wp_shortest(word, vocab, **kw):
        return ("This is the shortest-match segmentation: at each position take the LONGEST piece in the "
                "vocabulary (try end = len(word), len(word) - 1, ...).")
    if got == _wp_nohash(word, vocab, **kw):
        return "Continuation pieces (not at the start of a word) must be looked up, and returned, with the '##' prefix."
    return None


def _check_pieces(ctx, words, vocab, *, label, **kw):
    for word in words:
        got = ctx.sub.call("wordpiece", word, vocab, **kw)
        expected = ctx.ref.wordpiece(word, vocab, **kw)
        if got != expected:
            extra = _wp_diagnose(got, word, vocab, {k: v for k, v in kw.items() if k in ("max_chars",)}
                                 | ({"unk": kw["unk_token"]} if "unk_token" in kw else {}))
            shown = word if len(word) <= 40 else word[:20] + f"…({len(word)} chars)"
            args = "".join(f", {k}={v!r}" for k, v in kw.items())
            try:
                compare.exact(got, expected, name=f"wordpiece({shown!r}, {label}{args})")
            except Fail as exc:
                raise Fail(f"{exc} {extra}" if extra else str(exc)) from None
            raise Fail(f"wordpiece({shown!r}, {label}{args}) returned {got!r}, expected {expected!r}")


def _check_basic(ctx, texts):
    for text in texts:
        got = ctx.sub.call("basic_tokenize", text)
        compare.exact(got, ctx.ref.basic_tokenize(text), name=f"basic_tokenize({text!r})")


def _sep_shifted(expected, vocab):
    """token_type_ids with the first [SEP] given segment 1 (the mutant's mistake)."""
    ids, types = expected["input_ids"], list(expected["token_type_ids"])
    sep = vocab["[SEP]"]
    first = ids.index(sep)
    if 1 in types:
        types[first] = 1
    return types


def _check_encode(ctx, vocab, text, label, **kw):
    got = ctx.sub.call("encode", text, vocab, **kw)
    expected = ctx.ref.encode(text, vocab, **kw)
    args = "".join(f", {k}={v!r}" for k, v in kw.items())
    call = f"encode({text!r}, {label}{args})"
    if not isinstance(got, dict):
        raise Fail(f"{call} returned {type(got).__name__}, expected a dict with input_ids, token_type_ids, attention_mask")
    for key in ("input_ids", "token_type_ids", "attention_mask"):
        if key not in got:
            raise Fail(f"{call} has no key {key!r}")
        value = got[key]
        if hasattr(value, "tolist"):
            value = value.tolist()
        if key == "token_type_ids" and value != expected[key] and value == _sep_shifted(expected, vocab):
            raise Fail(f"{call}: token_type_ids {value} give the first [SEP] segment 1; it closes sentence A and "
                       "belongs to segment 0. Only B and the final [SEP] are 1.")
        if key == "input_ids" and value != expected[key]:
            inverse = {i: t for t, i in vocab.items()}
            shown = [inverse.get(i, i) for i in value] if isinstance(value, list) else value
            want = [inverse[i] for i in expected[key]]
            compare.exact(value, expected[key], name=f"{call}['input_ids'] (your tokens {shown}, expected {want})")
        compare.exact(value, expected[key], name=f"{call}[{key!r}]")


def _expect_value_error(ctx, func, *args, what, **kw):
    try:
        ctx.sub.call(func, *args, **kw)
    except StudentError as exc:
        if exc.error.get("type") == "ValueError":
            return
        raise Fail(f"{what}: expected a ValueError, got {exc.error.get('type')}: {exc.error.get('message', '')[:200]}") from None
    raise Fail(f"{what}: expected a ValueError, but the call returned normally")


# ------------------------------------------------------------------ data

BASIC_VISIBLE = [
    "Hello, World!",
    "  Naïve café:\tdon't ",
    "GPT-2 costs $5...",
    "Attention is all you need (Vaswani et al., 2017).",
    "The [CLS] token; isn't it?",
]
BASIC_HIDDEN = [
    "",
    "   \t\n  ",
    "„Anführungszeichen“ — «guillemets» … ¿qué?",
    "e-mail: user@example.org #tag ~tilde x^2 a|b <tag> 3+4=7",
    "ÀÉÎÕÜ ñ Ångström façade",
    "tabs\tand\nnewlines\r\nmixed",
    "fast🙂 smiley 🙂!",
    "well...okay!!!",
    "C'était déjà l'été",
]
WORDS_VISIBLE = ["tokenization", "transformer", "attention", "unbelievable", "retokenizing", "playing",
                 "gpt", "pretrained", "hyperparameters", "hello", "embeddings", "café", "x"]
WORDS_HIDDEN = ["unaffordable", "misunderstanding", "backpropagation", "quantization", "overfitting",
                "decoder", "zzz", "q", "λ", "naïveté", "123456", "state-of-the-art"]
SINGLE = ["The cat sat on the mat.", "Transformers use multi-head attention!", "", "Hugging Face 🙂 rocks"]
PAIRS = [("How are you?", "I am fine."), ("What does BERT predict?", "Masked tokens and the next sentence."),
         ("Short.", "")]


# ------------------------------------------------------------------ visible cases

@case(points=3, visible=True)
def basic_visible(ctx):
    """basic_tokenize: case, accents, whitespace, punctuation"""
    _check_basic(ctx, BASIC_VISIBLE)


@case(points=3, visible=True, hint="Greedy longest-match-first: at each position take the longest piece that is in "
                                    "the vocabulary; pieces after the first carry '##'.")
def wordpiece_visible(ctx):
    """wordpiece: words from the course notes"""
    _check_pieces(ctx, WORDS_VISIBLE, _vocab(ctx), label="vocab")


@case(points=2, visible=True)
def encode_visible(ctx):
    """encode: single sentence and pair"""
    vocab = _vocab(ctx)
    _check_encode(ctx, vocab, "The cat sat on the mat.", "vocab")
    _check_encode(ctx, vocab, "How are you?", "vocab", text_pair="I am fine.")


# ------------------------------------------------------------------ hidden cases

@case(points=2, visible=False)
def basic_hidden(ctx):
    """basic_tokenize: hidden sentences (Unicode punctuation, tabs, empty text)"""
    _check_basic(ctx, BASIC_HIDDEN)


@case(points=3, visible=False, hint="A word that cannot be segmented completely becomes ONE [UNK]; "
                                     "words longer than max_chars become [UNK] too.")
def wordpiece_hidden(ctx):
    """wordpiece: hidden words, [UNK], max_chars, a tiny vocabulary"""
    vocab = _vocab(ctx)
    _check_pieces(ctx, WORDS_HIDDEN, vocab, label="vocab")
    _check_pieces(ctx, ["a" * 100, "a" * 101, "abcabc"], vocab, label="vocab")
    _check_pieces(ctx, ["abcd", "abcdd", "abcbcd", "dab", "xyz", "abx", "abcdabcd"], TINY, label="tiny_vocab")
    _check_pieces(ctx, ["abcdab", "abcabcabc"], TINY, label="tiny_vocab", unk_token="<unk>", max_chars=6)


@case(points=3, visible=False, hint="Pairs are truncated longest first: remove the last token of the longer "
                                     "sentence, of B when both are equally long.")
def encode_truncation_hidden(ctx):
    """encode: truncation of pairs (longest first), padding, ValueErrors"""
    vocab = _vocab(ctx)
    long_a = "Multi-head attention runs several attention functions in parallel and concatenates them."
    long_b = "The key value cache stores the keys."
    for max_length in (8, 9, 12, 16, 64):
        _check_encode(ctx, vocab, long_a, "vocab", text_pair=long_b, max_length=max_length)
        _check_encode(ctx, vocab, long_b, "vocab", text_pair=long_a, max_length=max_length, padding=True)
    _check_encode(ctx, vocab, "one two three", "vocab", text_pair="four five six", max_length=7)
    _check_encode(ctx, vocab, long_a, "vocab", max_length=6)
    _check_encode(ctx, vocab, long_a, "vocab", max_length=2)
    _check_encode(ctx, vocab, "hi", "vocab", max_length=10, padding=True)
    _check_encode(ctx, vocab, "Short.", "vocab", text_pair="", max_length=5, padding=True)
    _expect_value_error(ctx, "encode", "hello", vocab, max_length=1, what="encode('hello', vocab, max_length=1)")
    _expect_value_error(ctx, "encode", "hello", vocab, text_pair="world", max_length=2,
                        what="encode('hello', vocab, text_pair='world', max_length=2)")
    _expect_value_error(ctx, "encode", "hello", vocab, padding=True, what="encode('hello', vocab, padding=True)")


@case(points=2, visible=False, hint="Look every id up in vocab: [CLS], [SEP] and [PAD] do not have fixed ids.")
def encode_permuted_vocab_hidden(ctx):
    """encode with a vocabulary whose special ids are not 0–4"""
    vocab = _permuted(ctx)
    for text in SINGLE:
        _check_encode(ctx, vocab, text, "permuted_vocab", max_length=24, padding=True)
    for a, b in PAIRS:
        _check_encode(ctx, vocab, a, "permuted_vocab", text_pair=b, max_length=20, padding=True)


@case(points=2, visible=False)
def encode_batch_hidden(ctx):
    """encode_batch: padding to the longest row"""
    vocab = _vocab(ctx)
    for kwargs in ({}, {"text_pairs": [b for _, b in PAIRS]}, {"max_length": 9}):
        texts = [a for a, _ in PAIRS] if "text_pairs" in kwargs else SINGLE
        got = ctx.sub.call("encode_batch", texts, vocab, **kwargs)
        expected = ctx.ref.encode_batch(texts, vocab, **kwargs)
        if not isinstance(got, dict):
            raise Fail(f"encode_batch returned {type(got).__name__}, expected a dict of three lists of rows")
        for key, rows in expected.items():
            value = got.get(key)
            if hasattr(value, "tolist"):
                value = value.tolist()
            compare.exact(value, rows, name=f"encode_batch(…{', ' if kwargs else ''}{', '.join(kwargs)})[{key!r}]")
    got = ctx.sub.call("encode_batch", [], vocab)
    if not isinstance(got, dict) or any(list(got.get(k, [None])) != [] for k in ("input_ids", "token_type_ids", "attention_mask")):
        raise Fail(f"encode_batch([], vocab) returned {got!r}, expected three empty lists")
    _expect_value_error(ctx, "encode_batch", ["a", "b"], vocab, text_pairs=["c"],
                        what="encode_batch(['a', 'b'], vocab, text_pairs=['c'])")
