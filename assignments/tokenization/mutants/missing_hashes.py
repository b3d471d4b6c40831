"""Mutant: continuation pieces are looked up without the '##' prefix."""
from __future__ import annotations

import unicodedata

PAD, UNK, CLS, SEP = "[PAD]", "[UNK]", "[CLS]", "[SEP]"


def is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def basic_tokenize(text: str) -> list[str]:
    text = unicodedata.normalize("NFD", text.lower())
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn")
    tokens: list[str] = []
    for chunk in text.split():
        current = ""
        for ch in chunk:
            if is_punctuation(ch):
                if current:
                    tokens.append(current)
                    current = ""
                tokens.append(ch)
            else:
                current += ch
        if current:
            tokens.append(current)
    return tokens


def wordpiece(word: str, vocab, unk_token: str = UNK, max_chars: int = 100) -> list[str]:
    if len(word) > max_chars:
        return [unk_token]
    pieces: list[str] = []
    start = 0
    while start < len(word):
        end = len(word)
        piece = None
        while start < end:
            candidate = word[start:end]
            if candidate in vocab:
                piece = candidate
                break
            end -= 1
        if piece is None:
            return [unk_token]
        pieces.append(piece)
        start = end
    return pieces


def tokenize(text: str, vocab) -> list[str]:
    return [piece for word in basic_tokenize(text) for piece in wordpiece(word, vocab)]


def _truncate(a: list[str], b: list[str] | None, budget: int) -> None:
    if b is None:
        del a[budget:]
        return
    while len(a) + len(b) > budget:
        if len(a) > len(b):
            a.pop()
        else:
            b.pop()


def encode(text, vocab, text_pair=None, max_length=None, padding=False) -> dict:
    a = tokenize(text, vocab)
    b = tokenize(text_pair, vocab) if text_pair is not None else None
    specials = 2 if b is None else 3
    if padding and max_length is None:
        raise ValueError("padding=True needs max_length")
    if max_length is not None:
        if max_length < specials:
            raise ValueError(f"max_length={max_length} leaves no room for the special tokens")
        _truncate(a, b, max_length - specials)
    tokens = [CLS] + a + [SEP]
    types = [0] * len(tokens)
    if b is not None:
        tokens += b + [SEP]
        types += [1] * (len(b) + 1)
    ids = [vocab[t] for t in tokens]
    mask = [1] * len(ids)
    if padding:
        extra = max_length - len(ids)
        ids += [vocab[PAD]] * extra
        types += [0] * extra
        mask += [0] * extra
    return {"input_ids": ids, "token_type_ids": types, "attention_mask": mask}


def encode_batch(texts, vocab, text_pairs=None, max_length=None) -> dict:
    if text_pairs is not None and len(text_pairs) != len(texts):
        raise ValueError("texts and text_pairs differ in length")
    rows = [encode(t, vocab, text_pairs[i] if text_pairs is not None else None, max_length)
            for i, t in enumerate(texts)]
    width = max((len(r["input_ids"]) for r in rows), default=0)
    out = {"input_ids": [], "token_type_ids": [], "attention_mask": []}
    for r in rows:
        extra = width - len(r["input_ids"])
        out["input_ids"].append(r["input_ids"] + [vocab[PAD]] * extra)
        out["token_type_ids"].append(r["token_type_ids"] + [0] * extra)
        out["attention_mask"].append(r["attention_mask"] + [0] * extra)
    return out
