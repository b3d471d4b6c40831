"""Correct solution: a regular-expression basic tokenizer (the punctuation class built once from
the handout's rule over every code point) and a WordPiece that only tries pieces up to the longest
vocabulary entry (same result, fewer look-ups), written recursively; encode via zip/itertools."""
import re
import sys
import unicodedata
from itertools import zip_longest

_PUNCT = "".join(
    chr(cp) for cp in range(sys.maxunicode + 1)
    if (33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126)
    or (not 0xD800 <= cp <= 0xDFFF and unicodedata.category(chr(cp)).startswith("P")))
_SPLIT = re.compile(f"[{re.escape(_PUNCT)}]|[^{re.escape(_PUNCT)}]+")


def basic_tokenize(text):
    text = unicodedata.normalize("NFD", text.lower())
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    return [tok for chunk in text.split() for tok in _SPLIT.findall(chunk)]


_LONGEST = {}


def _longest(vocab):
    key = id(vocab)
    if key not in _LONGEST or _LONGEST[key][0] is not vocab:
        _LONGEST[key] = (vocab, max((len(t) - (2 if t.startswith("##") else 0) for t in vocab), default=0))
    return _LONGEST[key][1]


def wordpiece(word, vocab, unk_token="[UNK]", max_chars=100):
    if len(word) > max_chars:
        return [unk_token]
    longest = _longest(vocab)

    def rest(start):
        if start == len(word):
            return []
        for end in range(min(len(word), start + longest), start, -1):
            piece = ("##" if start else "") + word[start:end]
            if piece in vocab:
                tail = rest(end)
                return None if tail is None else [piece] + tail
        return None

    pieces = rest(0)
    return [unk_token] if pieces is None else pieces


def tokenize(text, vocab):
    return [p for w in basic_tokenize(text) for p in wordpiece(w, vocab)]


def encode(text, vocab, text_pair=None, max_length=None, padding=False):
    a = tokenize(text, vocab)
    b = None if text_pair is None else tokenize(text_pair, vocab)
    n_special = 2 if b is None else 3
    if padding and max_length is None:
        raise ValueError("padding needs max_length")
    if max_length is not None:
        if max_length < n_special:
            raise ValueError("max_length too small")
        room = max_length - n_special
        if b is None:
            a = a[:room]
        else:
            while len(a) + len(b) > room:
                if len(a) > len(b):
                    a = a[:-1]
                else:
                    b = b[:-1]
    segments = [(["[CLS]"] + a + ["[SEP]"], 0)] + ([(b + ["[SEP]"], 1)] if b is not None else [])
    tokens = [t for toks, _ in segments for t in toks]
    types = [s for toks, s in segments for _ in toks]
    n_pad = (max_length - len(tokens)) if padding else 0
    return {"input_ids": [vocab[t] for t in tokens + ["[PAD]"] * n_pad],
            "token_type_ids": types + [0] * n_pad,
            "attention_mask": [1] * len(tokens) + [0] * n_pad}


def encode_batch(texts, vocab, text_pairs=None, max_length=None):
    if text_pairs is not None and len(text_pairs) != len(texts):
        raise ValueError("text_pairs has another length than texts")
    rows = [encode(t, vocab, p, max_length) for t, p in zip_longest(texts, text_pairs or [])]
    width = max((len(r["input_ids"]) for r in rows), default=0)
    fill = {"input_ids": vocab["[PAD]"], "token_type_ids": 0, "attention_mask": 0}
    return {k: [r[k] + [fill[k]] * (width - len(r[k])) for r in rows] for k in fill}
