"""``python -m grader check``: grade a pack's reference, starter, mutants and solutions and compare
with what they must get (reference.py when .py is accepted, reference.ipynb when present, and
solutions: full marks; starter: 0; mutants: the score and feedback substring recorded in
mutants/expected.toml)."""
from __future__ import annotations

import tomllib
from pathlib import Path

from grader.api import grade
from grader.pack import PackError, load_pack


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


def check_item(pack_dir: Path, item: dict) -> dict:
    path = Path(pack_dir) / item["file"]
    res = grade(pack_dir, path.name, path.read_bytes())
    problems = []
    if abs(res["score"] - item["score"]) > 1e-6:
        problems.append(f"got {res['score']:g}, expected {item['score']:g}")
    if item["message"]:
        text = res["message"] + "\n" + "\n".join(t["message"] for t in res["tests"])
        if item["message"] not in text:
            problems.append(f"the feedback does not mention {item['message']!r}")
    if item["score"] >= float(res["max_score"]) and res["status"] != "graded":
        problems.append(f"status {res['status']}: {res['message']}")
    return {"file": item["file"], "score": res["score"], "max_score": res["max_score"], "expected": item["score"],
            "ok": not problems, "problem": "; ".join(problems), "result": res}


def check_pack(pack_dir: Path) -> dict:
    pack_dir = Path(pack_dir)
    items = [check_item(pack_dir, it) for it in expectations(pack_dir)]
    for it in items:
        it.pop("result", None)
    return {"pack": pack_dir.name, "ok": all(i["ok"] for i in items), "items": items}
