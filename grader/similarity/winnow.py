"""Winnowing (Schleimer, Wilkerson and Aiken, "Winnowing: local algorithms for document
fingerprinting", SIGMOD 2003; the method behind MOSS) over a sequence of token ids.

Every k consecutive tokens (a k-gram) get a hash; of each window of ``w`` consecutive k-gram
hashes the smallest is kept (the rightmost on a tie), so any run of ``k + w - 1`` tokens that two
documents share yields at least one common fingerprint, while a document keeps only about
``2 / (w + 1)`` of its k-grams.

Hashes are stable across processes and machines (blake2b of the token, then a polynomial over
the k-gram mod a Mersenne prime), never Python's salted ``hash()``: fingerprints are cached by the
file's sha256 and compared with fingerprints computed in another worker, another day.
"""
from __future__ import annotations

import hashlib
from functools import lru_cache

MOD = (1 << 61) - 1      # a Mersenne prime: k-gram hashes are uniform below it
BASE = 1_000_003
MASK = (1 << 52) - 1     # fingerprints kept below 2**52: exact in JSON, JavaScript and every database


@lru_cache(maxsize=65536)
def token_id(token: str) -> int:
    return int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "big") % MOD


def kgram_hashes(tokens: list[str], k: int) -> list[int]:
    """The hash of every k-gram (one hash of the whole sequence when it is shorter than k)."""
    ids = [token_id(t) for t in tokens]
    if not ids:
        return []
    if len(ids) <= k:
        h = 0
        for x in ids:
            h = (h * BASE + x) % MOD
        return [h & MASK]
    top = pow(BASE, k - 1, MOD)
    h = 0
    for x in ids[:k]:
        h = (h * BASE + x) % MOD
    out = [h & MASK]
    for i in range(k, len(ids)):
        h = ((h - ids[i - k] * top) * BASE + ids[i]) % MOD
        out.append(h & MASK)
    return out


def winnow(hashes: list[int], w: int) -> list[int]:
    """Indexes of the fingerprints winnowing keeps: the minimum of each window of ``w`` hashes
    (rightmost minimum on ties), each position once. ``w == 1`` keeps every hash."""
    n = len(hashes)
    if w <= 1 or n <= w:
        if w <= 1:
            return list(range(n))
        # a sequence shorter than one window: its minimum
        return [min(range(n), key=lambda i: (hashes[i], -i))] if n else []
    kept: list[int] = []
    last = -1
    for start in range(n - w + 1):
        window_min = start
        for i in range(start + 1, start + w):
            if hashes[i] <= hashes[window_min]:
                window_min = i
        if window_min != last:
            kept.append(window_min)
            last = window_min
    return kept
