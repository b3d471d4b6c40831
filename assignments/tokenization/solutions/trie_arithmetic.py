"""A second correct solution: punctuation split with itertools.groupby, WordPiece with a prefix
trie (one pass finds the longest match), pair truncation computed arithmetically the way Hugging
Face's truncate_sequences does it, no helper shared with the reference."""
import itertools
import unicodedata

_TRIES = {}


def _punct(c):
    o = ord(c)
    return (33 <= o <= 47) or (58 <= o <= 64) or (91 <= o <= 96) or (123 <= o <= 126) \
        or unicodedata.category(c)[0] == "P"


def basic_tokenize(text):
    text = "".join(c for c in unicodedata.normalize("NFD", text.lower()) if unicodedata.category(c) != "Mn")
    out = []
    for chunk in text.split():
        for is_p, group in itertools.groupby(chunk, key=_punct):
            out.extend(group) if is_p else out.append("".join(group))
    return out


def _trie(vocab):
    key = id(vocab), len(vocab)
    if key not in _TRIES:
        root = {}
        for tok in vocab:
            node = root
            for ch in tok:
                node = node.setdefault(ch, {})
            node[None] = tok
        _TRIES.clear()
        _TRIES[key] = (vocab, root)
    return _TRIES[key][1]


def wordpiece(word, vocab, unk_token="[UNK]", max_chars=100):
    if len(word) > max_chars:
        return [unk_token]
    root = _trie(vocab)
    pieces, i = [], 0
    while i < len(word):
        node = root
        if i > 0:
            node = node.get("#", {}).get("#")
        best, j = None, i
        while node is not None and j < len(word):
            node = node.get(word[j])
            j += 1
            if node is not None and None in node:
                best = (node[None], j)
        if best is None:
            return [unk_token]
        pieces.append(best[0])
        i = best[1]
    return pieces


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
        excess = len(a) + len(b or []) + n_special - max_length
        if excess > 0:
            if b is None:
                a = a[: len(a) - excess]
            else:
                diff = len(a) - len(b)
                first = min(abs(diff), excess)
                second = excess - first
                if diff > 0:
                    cut_a, cut_b = first + second // 2, second - second // 2
                else:
                    cut_a, cut_b = second // 2, first + second - second // 2
                a, b = a[: len(a) - cut_a], b[: len(b) - cut_b]
    seq = ["[CLS]", *a, "[SEP]"] + ([] if b is None else [*b, "[SEP]"])
    seg = [0] * (len(a) + 2) + ([] if b is None else [1] * (len(b) + 1))
    pad = (max_length - len(seq)) if padding else 0
    return {
        "input_ids": [vocab[t] for t in seq] + [vocab["[PAD]"]] * pad,
        "token_type_ids": seg + [0] * pad,
        "attention_mask": [1] * len(seq) + [0] * pad,
    }


def encode_batch(texts, vocab, text_pairs=None, max_length=None):
    if text_pairs is not None and len(texts) != len(text_pairs):
        raise ValueError("texts and text_pairs must have the same length")
    pairs = text_pairs if text_pairs is not None else [None] * len(texts)
    rows = [encode(t, vocab, p, max_length=max_length) for t, p in zip(texts, pairs)]
    longest = max([len(r["input_ids"]) for r in rows], default=0)
    pad_id = vocab["[PAD]"]
    fill = {"input_ids": pad_id, "token_type_ids": 0, "attention_mask": 0}
    return {k: [r[k] + [fill[k]] * (longest - len(r[k])) for r in rows] for k in fill}
