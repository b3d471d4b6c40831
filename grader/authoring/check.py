"""``python -m grader check``: grade a pack's reference, starter, mutants and solutions and compare
with what they must get (reference.py when .py is accepted, reference.ipynb when present, and
solutions: full marks; starter: 0; mutants: the score and feedback substring recorded in
mutants/expected.toml).

``python -m grader check --repeat N --under-load`` is the determinism gate (``repeat_check``): every
file N times, shuffled, with fresh random state, while other processes keep every core busy; any
grade that changes, or misses its expectation, is reported and fails the command."""
from __future__ import annotations

import contextlib
import json
import os
import random
import subprocess
import sys
import time
import tomllib
from pathlib import Path

from grader.api import grade
from grader.authoring.pack import load_pack
from grader.errors import GraderError, PackError


def find_packs(root: Path) -> list[Path]:
    root = Path(root)
    if (root / "assignment.toml").is_file():
        return [root]
    return sorted(p.parent for p in root.glob("*/assignment.toml"))


def expectations(pack_dir: Path) -> list[dict]:
    """Every file the pack's own tests must grade, with what it must get."""
    pack = load_pack(pack_dir)
    full = float(pack.meta["points"])
    accepted = pack.meta["accepted"]
    items = []
    if "py" in accepted:
        items.append({"file": "reference.py", "score": full, "message": None})
    if "ipynb" in accepted and (pack_dir / "reference.ipynb").exists():
        items.append({"file": "reference.ipynb", "score": full, "message": None})
    if not items:
        raise PackError(f"{pack_dir}: accepts only {', '.join(accepted)}: add reference.ipynb so the reference can be graded")
    for name in ("starter.py", "starter.ipynb"):
        if (pack_dir / name).exists():
            items.append({"file": name, "score": 0.0, "message": None})
    mdir = pack_dir / "mutants"
    mutants = sorted(p for p in mdir.glob("*") if p.suffix in (".py", ".ipynb", ".zip")) if mdir.is_dir() else []
    expected = {}
    if (mdir / "expected.toml").is_file():
        try:
            expected = tomllib.loads((mdir / "expected.toml").read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise PackError(f"{mdir / 'expected.toml'}: {exc}") from None
    for m in mutants:
        exp = expected.get(m.stem)
        if not isinstance(exp, dict) or "score" not in exp:
            raise PackError(f"{mdir / 'expected.toml'}: no [{m.stem}] table with a score for mutants/{m.name}")
        items.append({"file": f"mutants/{m.name}", "score": float(exp["score"]), "message": exp.get("message")})
    stale = sorted(set(expected) - {m.stem for m in mutants})
    if stale:
        raise PackError(f"{mdir / 'expected.toml'}: entries without a mutant file: {', '.join(stale)}")
    sdir = pack_dir / "solutions"
    if sdir.is_dir():
        for s in sorted(p for p in sdir.glob("*") if p.suffix in (".py", ".ipynb", ".zip")):
            items.append({"file": f"solutions/{s.name}", "score": full, "message": None})
    return items


def check_item(pack_dir: Path, item: dict, grade_fn=None) -> dict:
    """Grade one listed file of a pack (under its own name) and compare with its expectation.
    ``grade_fn(pack_dir, filename, data)``: instead of grade() (a test suite's shared results)."""
    path = Path(pack_dir) / item["file"]
    res = (grade_fn or grade)(pack_dir, path.name, path.read_bytes())
    problems = []
    if abs(res["score"] - item["score"]) > 1e-6:
        problems.append(f"got {res['score']:g}, expected {item['score']:g}")
    if item["message"]:
        text = res["message"] + "\n" + "\n".join(t["message"] for t in res["tests"])
        if item["message"] not in text:
            problems.append(f"the feedback does not mention {item['message']!r}")
    if item["score"] >= float(res["max_score"]) and res["status"] != "graded":
        problems.append(f"status {res['status']}: {res['message']}")
    if res.get("review"):  # the pack's own files never give staff a reason to look (grader: "review")
        problems.append(f"flagged for review: {'; '.join(res['review'])[:300]}")
    return {"file": item["file"], "score": res["score"], "max_score": res["max_score"], "expected": item["score"],
            "ok": not problems, "problem": "; ".join(problems), "result": res}


def check_pack(pack_dir: Path) -> dict:
    pack_dir = Path(pack_dir)
    items = [check_item(pack_dir, it) for it in expectations(pack_dir)]
    for it in items:
        it.pop("result", None)
    return {"pack": pack_dir.name, "ok": all(i["ok"] for i in items), "items": items}


# --------------------------------------------------------------------------- the determinism gate

@contextlib.contextmanager
def busy_cores(n: int | None = None):
    """Keep ``n`` cores (default: every core) busy for the duration: one spinning Python process
    per core, started here and killed on exit, so grading runs as it would on a loaded worker."""
    n = int(n or os.cpu_count() or 1)
    procs = [subprocess.Popen([sys.executable, "-c", "while True:\n    pass"], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
             for _ in range(n)]
    try:
        yield procs
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


def _reseed_trusted(rng: random.Random) -> None:
    """Fresh global random state in this (trusted) process before each grade, so a driver that
    draws from a global generator instead of ctx.rng shows up as a changed grade. The sandbox seeds
    its own global generators freshly for every submission (grader/sandbox/child.py)."""
    seed = rng.getrandbits(63)
    random.seed(seed)
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed(seed & 0xFFFF_FFFF)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)


def grade_signature(res: dict) -> tuple:
    """What must not change between two grades of the same file: the status and score of the
    whole result and of every test (messages may quote measured values such as CPU seconds)."""
    return (res["status"], round(float(res["score"]), 6),
            tuple((t["id"], t["status"], round(float(t["score"]), 6)) for t in res["tests"]))


def _describe_signature(sig: tuple) -> str:
    status, score, tests = sig
    parts = [f"{tid} {st} {sc:g}" for tid, st, sc in tests]
    return f"{status} {score:g} [" + ", ".join(parts) + "]"


def repeat_check(pack_dirs, repeat: int = 20, *, under_load: bool = False, seed: int | None = None,
                 progress=None) -> dict:
    """Grade every expectation of every pack ``repeat`` times, in a freshly shuffled order each
    round, with fresh global random state in the trusted process and the sandbox, optionally while
    every core is kept busy by another process. Every grade is compared with the first grade of the
    same file and with the pack's recorded expectation.

    Returns {"grades": int, "changed": [...], "unexpected": [...], "files": int, "rounds": int,
    "seconds": float, "ok": bool}; ``changed`` lists each file whose grade differed from its first
    grade (with every distinct grade seen), ``unexpected`` each grade that missed its expectation.
    """
    rng = random.Random(seed)
    items = [(Path(p), it) for p in pack_dirs for it in expectations(Path(p))]
    seen: dict[str, dict[tuple, int]] = {}
    first: dict[str, tuple] = {}
    unexpected = []
    grades = 0
    started = time.monotonic()
    load = busy_cores() if under_load else contextlib.nullcontext()
    with load:
        for r in range(int(repeat)):
            order = items[:]
            rng.shuffle(order)
            for pack_dir, item in order:
                key = f"{pack_dir.name}/{item['file']}"
                _reseed_trusted(rng)
                got = check_item(pack_dir, item)
                sig = grade_signature(got["result"])
                grades += 1
                first.setdefault(key, sig)
                seen.setdefault(key, {})
                seen[key][sig] = seen[key].get(sig, 0) + 1
                if not got["ok"]:
                    unexpected.append({"file": key, "round": r + 1, "problem": got["problem"],
                                       "grade": _describe_signature(sig)})
                if progress is not None:
                    progress(r + 1, key, got, sig != first[key])
    changed = [{"file": key, "grades": {_describe_signature(s): n for s, n in sigs.items()}}
               for key, sigs in seen.items() if len(sigs) > 1]
    return {"grades": grades, "files": len(items), "rounds": int(repeat), "changed": changed,
            "unexpected": unexpected, "seconds": round(time.monotonic() - started, 1),
            "ok": not changed and not unexpected}


def gate_main(packs, repeat: int, *, under_load: bool = False, seed: int | None = None, as_json: bool = False) -> int:
    """``python -m grader check --repeat N [--under-load]``: run the gate, print every change.
    Exit 0 when no grade changed and every grade met its expectation, 3 otherwise, 1 on a pack or
    engine error."""
    def progress(rnd, key, got, changed):
        if as_json:
            return
        flag = "CHANGED" if changed else ("XX" if not got["ok"] else "ok")
        print(f"  round {rnd}/{repeat} [{flag}] {key}: {got['score']:g}/{got['max_score']:g}"
              + (f" — {got['problem']}" if not got["ok"] else ""), flush=True)

    try:
        rep = repeat_check(packs, repeat, under_load=under_load, seed=seed, progress=progress)
    except (PackError, GraderError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps(rep))
    else:
        print(f"{rep['grades']} grades of {rep['files']} files in {rep['rounds']} round(s)"
              f"{' under load' if under_load else ''}, {rep['seconds']:g} s: {len(rep['changed'])} file(s) changed "
              f"grade, {len(rep['unexpected'])} grade(s) missed the expectation.")
        for ch in rep["changed"]:
            print(f"CHANGED {ch['file']}:")
            for desc, n in ch["grades"].items():
                print(f"    {n}x {desc}")
        for u in rep["unexpected"]:
            print(f"UNEXPECTED {u['file']} (round {u['round']}): {u['problem']}")
    return 0 if rep["ok"] else 3
