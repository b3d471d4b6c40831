"""Trusted driver of the tokenization pack.

Everything here is compared exactly (token strings, ids, masks): tokenization is discrete, there
is no tolerance to choose, and the outputs do not depend on the device or on floating point.

The main vocabulary is data/vocab.txt (800 entries, built by build_vocab.py from data/corpus.txt;
`python build_vocab.py --check` verifies it). Hidden cases also use vocabularies made here: a tiny
one where longest and shortest match differ at every step, and a permuted copy of the main one whose
special tokens do not have the ids 0-4 (a submission that hard-codes [CLS] = 2 fails it).

Handout promise -> case(s) that exercise it:
  basic_tokenize: str.lower() (not casefold) ........................... basic_visible ("Straße"), basic_hidden
  NFD + drop category Mn (accents; not NFKD) ........................... basic_visible ("Naïve café", "ﬁ"), basic_hidden
                                                                          (Greek, full-width letters)
  str.split() whitespace (tabs, newlines, form feed, \x1f, NEL, NBSP,
  ideographic and thin spaces) ........................................ basic_visible, basic_hidden
  punctuation: ASCII ranges 33-47, 58-64, 91-96, 123-126 and category P* basic_visible ("$", "[CLS]"), basic_hidden
                                                                          („ “ — « » … ¿, 、 。, ^ | ~ < > = +)
  nothing else removed; CJK not split into characters; format characters
  (ZWJ inside an emoji, soft hyphen, zero-width space) stay ............ basic_visible, basic_hidden, wordpiece_visible
                                                                          (tokenize), encode_permuted_vocab_hidden
  empty / whitespace-only text -> [] ................................... basic_hidden
  wordpiece: greedy longest-match-first, "##" on continuations ......... wordpiece_visible, wordpiece_hidden (TINY vocab)
  a word that cannot be finished -> one [unk_token]; len > max_chars ... wordpiece_hidden ("zzz", "a"*101, unk_token,
                                                                          max_chars)
  tokenize = basic_tokenize + wordpiece per word ........................ wordpiece_visible (TOKENIZE_TEXTS)
  encode: [CLS] A [SEP] (B [SEP]); token_type_ids; attention_mask ...... encode_visible, encode_truncation_hidden
  ids always looked up in vocab ........................................ encode_permuted_vocab_hidden
  truncation: single keeps the first max_length-2; pairs longest first,
  ties from B; ValueError below the specials ........................... encode_truncation_hidden
  padding=True pads with [PAD] (types 0, mask 0); without max_length
  ValueError .......................................................... encode_truncation_hidden,
                                                                          encode_permuted_vocab_hidden
  encode_batch: like encode, pad to the longest row; [] -> three empty
  lists; text_pairs of another length -> ValueError .................... encode_batch_hidden
  tokenizer libraries not allowed ...................................... [forbid] in assignment.toml (engine)
"""
from __future__ import annotations

import random
from functools import lru_cache

from grader.authoring import Fail, StudentError, case, compare

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


def _is_cjk(cp: int) -> bool:
    """The CJK ideograph blocks Hugging Face's BasicTokenizer splits apart (_is_chinese_char)."""
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or 0x2A700 <= cp <= 0x2B73F
            or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF or 0xF900 <= cp <= 0xFAFF
            or 0x2F800 <= cp <= 0x2FA1F)


def _basic_variant(ref, text, mistake):
    """basic_tokenize with one known mistake applied (Hugging Face's BertTokenizer habits and others)."""
    import unicodedata

    if mistake == "cjk_split":      # BertTokenizer's _tokenize_chinese_chars
        text = "".join(f" {ch} " if _is_cjk(ord(ch)) else ch for ch in text)
    elif mistake == "clean_text":   # BertTokenizer's _clean_text: control/format characters removed
        text = "".join(ch for ch in text if ch in "\t\n\r" or not unicodedata.category(ch).startswith("C"))
    elif mistake == "casefold":
        return ref.basic_tokenize(text.casefold())
    elif mistake == "nfkd":
        text = unicodedata.normalize("NFKD", text)
    elif mistake == "no_strip":     # lowercased and split, accents kept
        return _no_strip(ref, text)
    return ref.basic_tokenize(text)


def _no_strip(ref, text):
    """Every step but the accent stripping."""
    tokens = []
    for chunk in text.lower().split():
        current = ""
        for ch in chunk:
            if ref.is_punctuation(ch):
                if current:
                    tokens.append(current)
                    current = ""
                tokens.append(ch)
            else:
                current += ch
        if current:
            tokens.append(current)
    return tokens


BASIC_MISTAKES = {
    "cjk_split": "Your tokens are what splitting CJK characters apart gives (as Hugging Face's BertTokenizer does); "
                 "the handout keeps them together like any other letters.",
    "clean_text": "Your tokens are what removing control/format characters gives (as Hugging Face's BertTokenizer "
                  "does); the handout removes nothing but the accents (a zero-width joiner or soft hyphen stays).",
    "casefold": "Your tokens are what str.casefold() gives; the handout lowercases with str.lower() (\"ß\" stays).",
    "nfkd": "Your tokens are what NFKD normalisation gives; the handout uses NFD (ligatures and full-width letters stay).",
    "no_strip": "Your tokens are what skipping the accent stripping gives: normalise with NFD and drop the "
                "characters of category Mn.",
}


def _check_basic(ctx, texts):
    for text in texts:
        got = ctx.sub.call("basic_tokenize", text)
        expected = ctx.ref.basic_tokenize(text)
        try:
            compare.exact(got, expected, name=f"basic_tokenize({text!r})")
        except Fail as exc:
            for mistake, hint in BASIC_MISTAKES.items():
                alt = _basic_variant(ctx.ref, text, mistake)
                if alt != expected and got == alt:
                    raise Fail(exc.message, hint=hint) from None
            raise


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
    "我爱NLP。BERT用WordPiece",                 # CJK stays together (no per-character split); 。 is punctuation
    "👩\u200d💻 codes\x0cfast",                  # ZWJ inside the emoji stays; a form feed is whitespace
    "Die Straße, \ufb01ne.",                        # str.lower() keeps ß (casefold would not); NFD keeps the ﬁ ligature
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
    "Straße ÆON Ὀδυσσεύς ΆΈΉ",                 # str.lower() (not casefold: ß stays); Greek accents are Mn
    "co\xadoperate a\u200bb 1\u2009000",         # soft hyphen and zero-width space (format) stay; thin space splits
    "東京タワー、ソウル\u3000北京!",              # CJK and kana kept whole, 、 and ! split, ideographic space splits
    "\ufb01ne ＡＢＣ",                           # NFD, not NFKD: the ﬁ ligature and full-width letters stay
    "unit\x1fseparator\x85next\xa0nbsp",        # str.split() whitespace: \x1f, NEL and NBSP split
]
TOKENIZE_TEXTS = [                              # tokenize = basic_tokenize + wordpiece on every word
    "Tokenization of unbelievable embeddings!",
    "我爱NLP。",                                # one [UNK] for the CJK word, not one per character
    "👩\u200d💻 attention",
]
WORDS_VISIBLE = ["tokenization", "transformer", "attention", "unbelievable", "retokenizing", "playing",
                 "gpt", "pretrained", "hyperparameters", "hello", "embeddings", "café", "x"]
WORDS_HIDDEN = ["unaffordable", "misunderstanding", "backpropagation", "quantization", "overfitting",
                "decoder", "zzz", "q", "λ", "naïveté", "123456", "state-of-the-art"]
SINGLE = ["The cat sat on the mat.", "Transformers use multi-head attention!", "", "Hugging Face 🙂 rocks",
          "BERT\u3000读\u200d书"]
PAIRS = [("How are you?", "I am fine."), ("What does BERT predict?", "Masked tokens and the next sentence."),
         ("Short.", "")]


# ------------------------------------------------------------------ visible cases

@case(points=3, visible=True)
def basic_visible(ctx):
    """basic_tokenize: case, accents, whitespace, punctuation"""
    _check_basic(ctx, BASIC_VISIBLE)


@case(points=3, visible=True)
def wordpiece_visible(ctx):
    """wordpiece and tokenize: words and sentences from the course notes"""
    vocab = _vocab(ctx)
    _check_pieces(ctx, WORDS_VISIBLE, vocab, label="vocab")
    for text in TOKENIZE_TEXTS:
        got = ctx.sub.call("tokenize", text, vocab)
        expected = ctx.ref.tokenize(text, vocab)
        try:
            compare.exact(got, expected, name=f"tokenize({text!r}, vocab)")
        except Fail as exc:
            for mistake, hint in BASIC_MISTAKES.items():
                alt = [p for w in _basic_variant(ctx.ref, text, mistake) for p in ctx.ref.wordpiece(w, vocab)]
                if alt != expected and got == alt:
                    raise Fail(exc.message, hint=hint.replace("Your tokens are", "Your tokens are those of basic "
                                                               "tokenization with a mistake:")) from None
            raise


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


@case(points=3, visible=False,
      hint="This test uses words that cannot be segmented completely, words of 100 and 101 characters, and a tiny "
           "vocabulary with unk_token and max_chars given.")
def wordpiece_hidden(ctx):
    """wordpiece: hidden words, [UNK], max_chars, a tiny vocabulary"""
    vocab = _vocab(ctx)
    _check_pieces(ctx, WORDS_HIDDEN, vocab, label="vocab")
    _check_pieces(ctx, ["a" * 100, "a" * 101, "abcabc"], vocab, label="vocab")
    _check_pieces(ctx, ["abcd", "abcdd", "abcbcd", "dab", "xyz", "abx", "abcdabcd"], TINY, label="tiny_vocab")
    _check_pieces(ctx, ["abcdab", "abcabcabc"], TINY, label="tiny_vocab", unk_token="<unk>", max_chars=6)


@case(points=3, visible=False,
      hint="This test truncates pairs at several max_length values (both orders of a long and a short sentence), "
           "pads, and expects a ValueError for max_length too small and for padding without max_length.")
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


@case(points=2, visible=False,
      hint="This test uses a vocabulary in which [PAD], [UNK], [CLS] and [SEP] have other ids than 0-3.")
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
