"""Similarity check at class scale: 300 generated submissions of the attention pack.

    python bench/similarity.py [--students 300] [--seed 26] [--json]

The class: independent solutions generated from the many ways a student writes attention (scores
by @ / matmul / einsum / broadcasting, five scalings, five maskings, five softmaxes, four ways to
zero masked weights, three outputs, helpers, shape checks, causal-mask builders, self-tests under
__main__, type hints, names from several pools), a few starter-only submissions, and planted
copies: a source student's file copied by one or two others with every identifier renamed,
functions reordered, comments and prints added (tests/similarity/variants.py), some padded with dead
statements inside the function, some with a self-test of their own appended.

The whole check runs as the site runs it (grader/similarity/: read, fingerprint, starter and
handout excluded, compare every pair, regions of every kept pair), in one process. Prints the wall
time and peak memory against the budgets (60 s on 2 cores, 1 GiB), whether every planted pair ranks
above every other pair, and precision / recall of the planted pairs at the report's default threshold.
Writes bench/results/similarity.json. Exit status 1 when a budget or the ranking fails.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import sys
import time
from itertools import combinations
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grader import similarity  # noqa: E402
from tests.similarity.variants import disguise, pad  # noqa: E402

PACK = ROOT / "assignments" / "attention"
TIME_BUDGET_S = 60.0
MEMORY_BUDGET_MB = 1024.0

NAMES = {
    "q": ["q", "query", "queries", "Q", "xq"], "k": ["k", "key", "keys", "K", "xk"],
    "v": ["v", "value", "values", "V", "xv"], "mask": ["mask", "attn_mask", "m", "allowed", "keep"],
    "s": ["scores", "att", "logits", "s", "energy", "sim", "qk", "raw"],
    "w": ["weights", "attn", "p", "probs", "w", "alpha", "attention", "a"],
    "d": ["d_k", "d", "dk", "dim", "head_dim", "scale_dim"], "o": ["out", "output", "context", "y", "res", "z"],
}


def pick(rng, role):
    return rng.choice(NAMES[role])


def independent(rng: random.Random) -> str:
    """One student's own attention: each step drawn from the ways students write it."""
    n = {r: pick(rng, r) for r in NAMES}
    q, k, v, m, s, w, d, o = (n[x] for x in "q k v mask s w d o".split())
    imports = ["import torch"]
    if rng.random() < 0.7:
        imports.insert(0, "import math")
    use_f = rng.random() < 0.4
    if use_f:
        imports.append(rng.choice(["import torch.nn.functional as F", "from torch.nn import functional as F"]))
    hints = rng.random() < 0.3
    if hints:
        imports.append("from torch import Tensor")
    body: list[str] = []
    helpers: list[str] = []
    # head dimension: a variable of its own, or written where it is used
    if rng.random() < 0.75:
        body.append(rng.choice([f"{d} = {q}.shape[-1]", f"{d} = {q}.size(-1)", f"{d} = {k}.size(-1)",
                                f"*_, {d} = {q}.shape", f"{d} = {q}.shape[{q}.dim() - 1]"]))
    else:
        d = rng.choice([f"{q}.shape[-1]", f"{k}.size(-1)", f"{q}.size(-1)"])
    if rng.random() < 0.35:  # a shape check of some kind
        body.append(rng.choice([
            f"assert {q}.shape[-1] == {k}.shape[-1], 'query and key sizes differ'",
            f"if {k}.shape[-2] != {v}.shape[-2]:\n    raise ValueError(f'{{{k}.shape}} vs {{{v}.shape}}')",
            f"assert {q}.dim() >= 2 and {k}.dim() >= 2",
            f"assert {k}.size(-2) == {v}.size(-2), ({k}.shape, {v}.shape)"]))
    if rng.random() < 0.2:
        body.append(rng.choice([f"{q}, {k}, {v} = {q}.float(), {k}.float(), {v}.float()",
                                f"{q} = {q}.contiguous()"]))
    # scaling
    scale_how = rng.randrange(6)
    if scale_how == 3:
        body.append(f"{q} = {q} / " + (f"math.sqrt({d})" if "import math" in imports else f"({d} ** 0.5)"))
    kt = k
    if rng.random() < 0.3:  # the transposed keys as a variable of their own
        kt = rng.choice(["kt", "k_t", "keys_t", "kT"])
        body.append(f"{kt} = {k}." + rng.choice(["transpose(-2, -1)", "transpose(-1, -2)", "mT", "swapaxes(-1, -2)"]))
        prod = rng.choice([f"{q} @ {kt}", f"torch.matmul({q}, {kt})"])
    else:
        prod = rng.choice([f"{q} @ {k}.transpose(-2, -1)", f"torch.matmul({q}, {k}.transpose(-1, -2))",
                           f"torch.einsum('...id,...jd->...ij', {q}, {k})", f"{q} @ {k}.mT",
                           f"({q}.unsqueeze(-2) * {k}.unsqueeze(-3)).sum(-1)", f"{q} @ {k}.swapaxes(-1, -2)"])
    if scale_how == 0:
        expr = f"{prod} / " + (f"math.sqrt({d})" if "import math" in imports else f"{d} ** 0.5")
    elif scale_how == 1:
        expr = f"{prod} * {d} ** -0.5"
    elif scale_how == 2:
        expr = f"{prod} / ({d} ** 0.5)"
    elif scale_how == 3:
        expr = prod
    elif scale_how == 4:
        expr = f"{prod} * (1.0 / " + (f"math.sqrt({d}))" if "import math" in imports else f"{d} ** 0.5)")
    else:
        expr = f"{prod} / torch.tensor({d}, dtype={q}.dtype).sqrt()"
    if rng.random() < 0.3 and kt == k and "." not in d:
        helpers.append(f"def _scores({q}, {k}, {d}):\n    return {expr}")
        body.append(f"{s} = _scores({q}, {k}, {d})")
    elif rng.random() < 0.3 and scale_how != 3:  # scaled in a statement of its own
        body.append(f"{s} = {prod}")
        body.append(rng.choice([f"{s} = {s} / " + (f"math.sqrt({d})" if "import math" in imports else f"{d} ** 0.5"),
                                f"{s} /= {d} ** 0.5", f"{s} = {s} * {d} ** -0.5"]))
    else:
        body.append(f"{s} = {expr}")
    # masking
    mask_how = rng.randrange(5)
    fill = [f"{s} = {s}.masked_fill(~{m}, float('-inf'))", f"{s} = {s}.masked_fill({m} == 0, -1e9)",
            f"{s} = torch.where({m}, {s}, torch.full_like({s}, float('-inf')))",
            f"{s} = {s} + (1.0 - {m}.to({s}.dtype)) * -1e9",
            f"{s} = {s}.masked_fill({m}.logical_not(), torch.finfo({s}.dtype).min)"][mask_how]
    if rng.random() < 0.25:
        body.append(f"if {m} is not None and {m}.dtype != torch.bool:\n    {m} = {m}.bool()")
    body.append(f"if {m} is not None:\n    {fill}")
    # softmax
    soft = rng.randrange(6)
    if soft == 5:
        body.append(f"{w} = torch.softmax({s}, -1)")
    elif soft == 0:
        body.append(f"{w} = torch.softmax({s}, dim=-1)")
    elif soft == 1:
        body.append(f"{w} = F.softmax({s}, dim=-1)" if use_f else f"{w} = {s}.softmax(dim=-1)")
    elif soft == 2:
        body.append(f"{w} = {s}.softmax(-1)")
    elif soft == 3:
        body.append(f"{w} = torch.exp({s} - {s}.amax(dim=-1, keepdim=True))\n{w} = {w} / {w}.sum(dim=-1, keepdim=True)")
    else:
        body.append(f"{w} = torch.exp(torch.log_softmax({s}, dim=-1))")
    # exact zeros where masked
    zero = rng.randrange(5)
    if zero == 0:
        body.append(f"if {m} is not None:\n    {w} = {w}.masked_fill(~{m}, 0.0)")
    elif zero == 1:
        body.append(f"if {m} is not None:\n    {w} = {w} * {m}")
    elif zero == 2:
        body.append(f"if {m} is not None:\n    {w} = torch.where({m}, {w}, torch.zeros_like({w}))")
    elif zero == 3:
        body.append(f"{w} = torch.nan_to_num({w}, nan=0.0)")
    # output
    out = rng.choice([f"{w} @ {v}", f"torch.matmul({w}, {v})", f"torch.einsum('...ij,...jd->...id', {w}, {v})"])
    if rng.random() < 0.5:
        body.append(f"{o} = {out}\nreturn {o}, {w}")
    else:
        body.append(f"return {out}, {w}")
    sig = (f"def scaled_dot_product_attention({q}: Tensor, {k}: Tensor, {v}: Tensor, {m}: Tensor | None = None)"
           f" -> tuple[Tensor, Tensor]:" if hints else f"def scaled_dot_product_attention({q}, {k}, {v}, {m}=None):")
    doc = rng.choice(["", '    """Scaled dot-product attention."""\n', '    """softmax(QK^T / sqrt(d)) V, masked."""\n',
                      "    # my implementation\n", ""])
    func = sig + "\n" + doc + "\n".join("    " + ln for part in body for ln in part.split("\n"))
    if rng.random() < 0.3:  # a causal-mask builder of their own
        t = rng.choice(["n", "size", "seq_len", "T"])
        helpers.append(rng.choice([
            f"def causal_mask({t}):\n    return torch.tril(torch.ones({t}, {t}, dtype=torch.bool))",
            f"def causal_mask({t}):\n    idx = torch.arange({t})\n    return idx[:, None] >= idx[None, :]",
            f"def make_causal({t}, device=None):\n    return torch.ones({t}, {t}, device=device).tril().bool()"]))
    main = ""
    if rng.random() < 0.6:  # a self-test under __main__, each different
        b, t1, t2, dd = rng.randint(1, 4), rng.randint(2, 9), rng.randint(2, 9), rng.choice([4, 8, 16, 32])
        lines = [f"torch.manual_seed({rng.randint(0, 9999)})",
                 f"a, b, c = torch.randn({b}, {t1}, {dd}), torch.randn({b}, {t2}, {dd}), torch.randn({b}, {t2}, {dd})",
                 "res, att = scaled_dot_product_attention(a, b, c)"]
        extra = rng.sample([
            "print(res.shape, att.shape)",
            "assert torch.allclose(att.sum(-1), torch.ones_like(att.sum(-1)))",
            f"mk = torch.ones({t1}, {t2}, dtype=torch.bool).tril()\nprint(scaled_dot_product_attention(a, b, c, mk)[1][0])",
            "print('ok' if torch.isfinite(res).all() else 'nan!')",
            f"big = scaled_dot_product_attention(a * 1e4, b, c)[0]\nassert torch.isfinite(big).all()",
            "for name, t in [('out', res), ('w', att)]:\n    print(name, tuple(t.shape))"], rng.randint(1, 3))
        lines += [ln for e in extra for ln in e.split("\n")]
        main = 'if __name__ == "__main__":\n' + "\n".join("    " + ln for ln in lines) + "\n"
    parts = helpers + [func]
    rng.shuffle(parts)
    header = rng.choice(["", '"""Assignment 1: attention."""\n', "# Attention assignment\n", '"""My solution."""\n'])
    return header + "\n".join(imports) + "\n\n\n" + "\n\n\n".join(parts) + "\n\n\n" + main


def copy_of(source: str, rng: random.Random) -> str:
    text = disguise(source, rng.randint(0, 10**6), keep={"scaled_dot_product_attention"})
    if rng.random() < 0.4:  # padded with dead statements too
        text = pad(text, rng, rng.randint(1, 2))
    if rng.random() < 0.3 and "__main__" not in text:  # the copier adds a self-test of their own
        text += ('\n\nif __name__ == "__main__":\n    x = torch.randn(2, 5, 8)\n'
                 "    print(scaled_dot_product_attention(x, x, x)[0].shape)\n")
    return text


def build_class(n: int, seed: int):
    """(files: key -> (name, bytes), planted pairs: set of frozensets, copy groups)."""
    rng = random.Random(seed)
    files: dict[str, tuple[str, bytes]] = {}
    starter = (PACK / "starter.py").read_bytes()
    n_starter = max(2, n // 60)
    groups = []
    n_sources = max(2, n // 20)           # 15 sources for 300 students
    copiers = [1 if i % 3 else 2 for i in range(n_sources)]   # every third source copied by two
    n_independent = n - n_starter - sum(copiers)
    for i in range(n_independent):
        files[f"student{i:03d}"] = ("attention.py", independent(rng).encode())
    for i in range(n_starter):
        files[f"starter{i}"] = ("attention.py", starter)
    keys = sorted(files)
    sources = rng.sample([k for k in keys if k.startswith("student")], n_sources)
    for j, (src, count) in enumerate(zip(sources, copiers)):
        group = [src]
        for c in range(count):
            key = f"copier{j:02d}_{c}"
            files[key] = ("attention.py", copy_of(files[src][1].decode(), rng).encode())
            group.append(key)
        groups.append(group)
    planted = {frozenset(p) for g in groups for p in combinations(g, 2)}
    return files, planted, groups


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--students", type=int, default=300)
    ap.add_argument("--seed", type=int, default=26)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    files, planted, groups = build_class(args.students, args.seed)
    rss_before = peak_mb()
    params = similarity.DEFAULT
    t0 = time.perf_counter()
    excluded = set()
    for name in ("starter.py", "starter.ipynb"):
        excluded |= similarity.kgram_set(similarity.read_file(PACK / name), params)
    for code in similarity.snippet_sources((PACK / "handout.md").read_text()):
        excluded |= similarity.kgram_set(code, params)
    fps = {key: similarity.fingerprint_source(similarity.read_source(name, data), params)
           for key, (name, data) in files.items()}
    t_read = time.perf_counter() - t0
    check = similarity.Check(fps, excluded, {}, params)
    report = check.run(min_score=0.1)
    elapsed = time.perf_counter() - t0
    peak = peak_mb()

    scores = {frozenset((p.a, p.b)): p.score for p in report.pairs}
    planted_scores = sorted(scores.get(p, 0.0) for p in planted)
    other = [p for p in report.pairs if frozenset((p.a, p.b)) not in planted]
    max_other = max((p.score for p in other), default=0.0)
    flagged = {frozenset((p.a, p.b)) for p in report.flagged()}
    tp = len(flagged & planted)
    precision = tp / len(flagged) if flagged else 1.0
    recall = tp / len(planted) if planted else 1.0
    ranked_above = planted_scores[0] > max_other
    rank_of_last_planted = max(i for i, p in enumerate(report.pairs, 1) if frozenset((p.a, p.b)) in planted)
    result = {
        "students": len(files), "planted_pairs": len(planted), "copy_groups": len(groups),
        "pairs_compared": len(files) * (len(files) - 1) // 2, "pairs_kept": len(report.pairs),
        "seconds_total": round(elapsed, 2), "seconds_read_and_fingerprint": round(t_read, 2),
        "peak_rss_mb": round(peak, 1), "rss_before_mb": round(rss_before, 1),
        "threshold": params.threshold, "precision": round(precision, 4), "recall": round(recall, 4),
        "min_planted_score": planted_scores[0], "max_other_score": max_other,
        "planted_all_ranked_above_every_other_pair": ranked_above,
        "rank_of_lowest_planted_pair": rank_of_last_planted, "clusters": len(report.clusters),
        "cpus": os.cpu_count(), "load_avg": [round(x, 2) for x in os.getloadavg()], "python": platform.python_version(),
    }
    curve = {}
    for t in (0.4, 0.5, 0.6, 0.7, 0.8, 0.9):
        hit = {frozenset((p.a, p.b)) for p in report.pairs if p.score >= t}
        curve[t] = (len(hit & planted) / len(hit) if hit else 1.0, len(hit & planted) / len(planted), len(hit))
    result["precision_recall_by_threshold"] = {str(t): {"precision": round(pr, 3), "recall": round(rc, 3),
                                                        "flagged": n} for t, (pr, rc, n) in curve.items()}
    ok = elapsed <= TIME_BUDGET_S and peak <= MEMORY_BUDGET_MB and ranked_above
    (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
    (ROOT / "bench" / "results" / "similarity.json").write_text(json.dumps(result, indent=2))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{len(files)} submissions of the attention pack ({len(planted)} planted pairs in {len(groups)} copy "
              f"groups, {args.students // 60 if args.students >= 120 else 2} starter-only), "
              f"{result['pairs_compared']} pairs compared, {len(report.pairs)} kept (score >= 0.10)")
        print(f"time:   {elapsed:.2f} s (read + fingerprint {t_read:.2f} s)  budget {TIME_BUDGET_S:.0f} s  "
              f"[{'ok' if elapsed <= TIME_BUDGET_S else 'OVER'}]  (load average {result['load_avg']}, "
              f"{os.cpu_count()} CPUs, shared)")
        print(f"memory: peak RSS {peak:.0f} MiB (of which {rss_before:.0f} MiB before the check)  budget "
              f"{MEMORY_BUDGET_MB:.0f} MiB  [{'ok' if peak <= MEMORY_BUDGET_MB else 'OVER'}]")
        print(f"ranking: lowest planted pair {planted_scores[0]:.3f} vs highest other pair {max_other:.3f}: "
              f"{'every planted pair ranks above every other pair' if ranked_above else 'NOT all planted pairs rank first'}"
              f" (last planted pair at rank {rank_of_last_planted} of {len(report.pairs)})")
        print(f"at the default threshold {params.threshold:.2f}: {len(flagged)} flagged, precision {precision:.3f}, "
              f"recall {recall:.3f}; {len(report.clusters)} cluster(s) of 3 or more")
        print("other thresholds: " + "; ".join(f"{t:.1f}: P {pr:.2f} R {rc:.2f} ({n} flagged)"
                                               for t, (pr, rc, n) in curve.items()))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
