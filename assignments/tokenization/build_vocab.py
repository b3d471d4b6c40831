"""Builds data/vocab.txt, the WordPiece vocabulary of this pack, from data/corpus.txt.

    python build_vocab.py [--size 800] [--check]

Start from single characters (a word's first character as is, every later character as a "##"
continuation piece), then repeatedly merge the most frequent adjacent pair of pieces (ties broken
alphabetically) and add the merged piece, until the vocabulary has --size entries. Choosing pairs by
frequency is the byte-pair-encoding rule; Google's WordPiece scores a pair by the likelihood gain
freq(ab) / (freq(a) * freq(b)), which on a corpus this small favours rare letters and gives an
unreadable vocabulary. Either way the output is a WordPiece vocabulary ("##" marks continuations),
and tokenizing with it is the assignment. The build is deterministic, so the committed vocab.txt
can be checked against this script (--check). No download, no library.
"""
from __future__ import annotations

import argparse
import string
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _basic_tokenize():
    sys.path.insert(0, str(HERE))
    try:
        from reference import basic_tokenize
    finally:
        sys.path.pop(0)
    return basic_tokenize


def build(corpus: str, size: int) -> list[str]:
    words = Counter(_basic_tokenize()(corpus))
    alphabet: set[str] = set()
    for ch in string.ascii_lowercase + string.digits:
        alphabet.update({ch, "##" + ch})
    alphabet.update(string.punctuation)
    for word in words:
        alphabet.add(word[0])
        alphabet.update("##" + ch for ch in word[1:])
    vocab = SPECIAL + sorted(alphabet)
    splits = {w: [w[0]] + ["##" + c for c in w[1:]] for w in words}
    known = set(vocab)
    while len(vocab) < size:
        piece_freq: Counter = Counter()
        pair_freq: Counter = Counter()
        for word, freq in words.items():
            parts = splits[word]
            for i, p in enumerate(parts):
                piece_freq[p] += freq
                if i + 1 < len(parts):
                    pair_freq[(p, parts[i + 1])] += freq
        if not pair_freq:
            break
        best = min(pair_freq, key=lambda pr: (-pair_freq[pr], pr))
        a, b = best
        merged = a + b[2:] if b.startswith("##") else a + b
        for word, parts in splits.items():
            i = 0
            while i < len(parts) - 1:
                if parts[i] == a and parts[i + 1] == b:
                    parts[i : i + 2] = [merged]
                else:
                    i += 1
        if merged not in known:
            known.add(merged)
            vocab.append(merged)
    return vocab


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=800)
    ap.add_argument("--check", action="store_true", help="fail if vocab.txt differs from a fresh build")
    args = ap.parse_args(argv)
    vocab = build((HERE / "data" / "corpus.txt").read_text(encoding="utf-8"), args.size)
    text = "\n".join(vocab) + "\n"
    target = HERE / "data" / "vocab.txt"
    if args.check:
        if target.read_text(encoding="utf-8") != text:
            print("vocab.txt is out of date: run python build_vocab.py", file=sys.stderr)
            return 1
        print(f"vocab.txt is up to date ({len(vocab)} entries)")
        return 0
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target} ({len(vocab)} entries)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
