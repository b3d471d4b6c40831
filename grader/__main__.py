"""CLI: ``python -m grader grade <pack> <submission> [--json]`` and
``python -m grader check [<pack|folder>...] [--repeat N] [--under-load]``."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from grader.api import grade, trusted_ceiling
from grader.authoring.check import check_pack, find_packs, gate_main
from grader.authoring.pack import load_pack
from grader.errors import GraderError, PackError
from grader.text import clean


def _print_report(res: dict, filename: str) -> None:
    print(f"{filename}: {res['status']} — {res['message']}")
    for t in res["tests"]:
        mark = {"passed": "PASS", "failed": "FAIL", "error": "ERR ", "timeout": "TIME"}.get(t["status"], t["status"])
        vis = "" if t["visible"] else " (hidden)"
        print(f"  [{mark}] {t['score']:g}/{t['max_score']:g}  {t['name']}{vis}")
        if t["status"] != "passed":
            for line in t["message"].splitlines():
                print(f"         {line}")
    for note in res.get("notes", []):
        print(f"  note: {note}")
    if res.get("output"):
        print("  output:\n    " + res["output"][:2000].replace("\n", "\n    "))
    print(f"  score: {res['score']:g}/{res['max_score']:g}  ({res.get('elapsed_s', 0):.3f} s)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m grader", description="courseplatform grading engine")
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("grade", help="grade one submission (.py, .ipynb, .zip)")
    g.add_argument("pack", type=Path)
    g.add_argument("submission", type=Path)
    g.add_argument("--json", action="store_true", help="print one JSON object")
    c = sub.add_parser("check", help="grade a pack's reference, starter, mutants and solutions against expectations")
    c.add_argument("pack", type=Path, nargs="*", default=[Path("assignments")],
                   help="pack directories and/or folders of packs (default: assignments)")
    c.add_argument("--json", action="store_true")
    c.add_argument("--repeat", type=int, default=0, metavar="N",
                   help="determinism gate: grade every file N times in shuffled orders with fresh random "
                        "state and report every grade that changed")
    c.add_argument("--under-load", action="store_true",
                   help="keep every core busy with another process while grading (implies the gate)")
    c.add_argument("--seed", type=int, default=None, help="seed of the gate's shuffling and reseeding")
    args = ap.parse_args(argv)
    trusted_ceiling()  # this process grades: its own memory ceiling (GRADER_TRUSTED_MEMORY_MB)

    if args.cmd == "grade":
        if not (args.pack / "assignment.toml").is_file():
            print(f"error: {args.pack} is not an assignment pack (no assignment.toml)", file=sys.stderr)
            return 2
        if not args.submission.is_file():
            print(f"error: {args.submission}: no such file", file=sys.stderr)
            return 2
        try:
            res = grade(args.pack, args.submission.name, args.submission.read_bytes())
        except GraderError as exc:
            print(f"grader error: {clean(exc)}", file=sys.stderr)
            return 1
        except Exception as exc:  # noqa: BLE001  an engine bug: one line, never a traceback
            print(f"grader error: the engine failed ({type(exc).__name__}: {clean(exc)[:300]})", file=sys.stderr)
            return 1
        if args.json:
            print(json.dumps(res))
        else:
            _print_report(res, clean(args.submission.name))
        return 0

    packs = [p for root in args.pack for p in find_packs(root)]
    if not packs:
        print(f"error: no assignment pack under {' '.join(map(str, args.pack))}", file=sys.stderr)
        return 2
    if args.repeat > 0 or args.under_load:
        return gate_main(packs, max(1, args.repeat), under_load=args.under_load, seed=args.seed, as_json=args.json)
    ok = True
    reports = []
    for p in packs:
        try:
            load_pack(p)
            rep = check_pack(p)
        except (PackError, GraderError) as exc:
            print(f"{p}: error: {exc}", file=sys.stderr)
            return 1
        reports.append(rep)
        ok &= rep["ok"]
        if not args.json:
            print(f"{rep['pack']}: {'OK' if rep['ok'] else 'FAILED'}")
            for item in rep["items"]:
                print(f"  [{'ok' if item['ok'] else 'XX'}] {item['file']}: {item['score']:g}/{item['max_score']:g}"
                      f" (expected {item['expected']})" + ("" if item["ok"] else f" — {item['problem']}"))
    if args.json:
        print(json.dumps(reports))
    return 0 if ok else 3


if __name__ == "__main__":
    sys.exit(main())
