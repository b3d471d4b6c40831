"""Rank the files of a folder by similarity, with no database (grader/similarity/ does the work).

    python manage.py similarity --files DIR [--starter FILE ...] [--handout FILE ...] [--public DIR] [--json]

Every .py, .ipynb and .zip under DIR is one submission (a folder of exported submissions: the
assignment export's ``<slug>/<username>/<file>`` layout works as it is). Prints the pairs at or
above the threshold, best first, with their scores, the share of each file involved and the
matched line ranges, then the clusters of three or more files; ``--json`` prints the same as JSON.
Exit status 0 whatever is found; 2 for a usage error.
"""
from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from grader.api import similarity


class Command(BaseCommand):
    help = "Rank the files of a folder by similarity (copy detection), without a database."
    requires_system_checks: list = []
    requires_migrations_checks = False

    def add_arguments(self, parser):
        parser.add_argument("--files", required=True, type=Path, help="Folder of submissions (.py, .ipynb, .zip).")
        parser.add_argument("--starter", action="append", default=[], type=Path,
                            help="Starter file whose code is excluded (repeatable).")
        parser.add_argument("--handout", action="append", default=[], type=Path,
                            help="Handout (Markdown) whose code snippets are excluded (repeatable).")
        parser.add_argument("--public", type=Path, help="Folder of known public implementations.")
        parser.add_argument("--threshold", type=float, default=similarity.DEFAULT.threshold,
                            help=f"Flag pairs at or above this score (default {similarity.DEFAULT.threshold}).")
        parser.add_argument("--boilerplate", type=float, default=similarity.DEFAULT.boilerplate_share,
                            help="Share of the class above which a fingerprint is common "
                                 f"(default {similarity.DEFAULT.boilerplate_share}).")
        parser.add_argument("--below", type=int, default=5,
                            help="Also list this many pairs below the threshold, for comparison (default 5).")
        parser.add_argument("--json", action="store_true", help="Print JSON.")

    def handle(self, *args, **opts):
        folder: Path = opts["files"]
        if not folder.is_dir():
            raise CommandError(f"{folder} is not a folder.")
        for f in opts["starter"] + opts["handout"]:
            if not f.is_file():
                raise CommandError(f"{f} is not a file.")
        if opts["public"] and not opts["public"].is_dir():
            raise CommandError(f"{opts['public']} is not a folder.")
        if not 0 < opts["threshold"] <= 1 or not 0 < opts["boilerplate"] <= 1:
            raise CommandError("--threshold and --boilerplate are between 0 and 1.")
        params = replace(similarity.DEFAULT, threshold=opts["threshold"], boilerplate_share=opts["boilerplate"])
        report, sources = similarity.check_folder(folder, opts["starter"], opts["handout"], opts["public"], params)
        flagged = report.flagged()
        below = [p for p in report.pairs if p.score < params.threshold][: max(0, opts["below"])]
        if opts["json"]:
            self.stdout.write(json.dumps({
                "files": len(sources), "threshold": params.threshold, "params": asdict(params),
                "flagged": [p.as_dict() for p in flagged], "below": [p.as_dict() for p in below],
                "clusters": report.clusters, "notes": report.notes,
            }, indent=2))
            return
        out = self.stdout
        out.write(f"{len(sources)} files compared; {len(flagged)} pair(s) at or above {params.threshold:.2f}; "
                  f"{len(report.clusters)} cluster(s) of 3 or more.")
        if not flagged:
            out.write("No pair is flagged.")
        for title, pairs in (("Flagged", flagged), ("Highest below the threshold", below)):
            if not pairs:
                continue
            out.write(f"\n{title}:")
            out.write(f"{'score':>6}  {'share a':>7}  {'share b':>7}  files")
            for p in pairs:
                out.write(f"{p.score:6.2f}  {p.share_a:7.0%}  {p.share_b:7.0%}  {p.a}  <->  {p.b}")
                for r in p.regions[:12]:
                    label = {"copy": "shared", "public": f"public ({r.get('source', '')})", "common": "common"}[r["kind"]]
                    out.write(f"{'':26}{label}: lines {similarity.ranges([r['a']])}  <->  {similarity.ranges([r['b']])}")
                if len(p.regions) > 12:
                    out.write(f"{'':26}... and {len(p.regions) - 12} more region(s)")
        for i, c in enumerate(report.clusters, 1):
            out.write(f"\nCluster {i}: " + ", ".join(map(str, c)))
        for key, notes in sorted(report.notes.items()):
            for n in notes:
                out.write(f"note: {key}: {n}")
