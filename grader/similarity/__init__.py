"""Copy detection across one assignment's submissions (Django-free; the site and
``python manage.py similarity`` both call it).

1. **Read.** A ``.py`` file as it is; a notebook as the module of its code cells (the engine's
   conversion, grader/intake/submission.py); a zip as each ``.py``/``.ipynb`` inside it, through the zip
   policy (grader/intake/ziparchive.py). Nothing is executed or imported.
2. **Normalise** (grader/similarity/simtokens.py): a token stream per function read off the syntax tree,
   with identifiers and literals normalised and comments, docstrings, prints and imports gone.
3. **Fingerprint** (grader/similarity/winnow.py): k-gram hashes of each unit, winnowed.
4. **Noise.** Fingerprints of the starter code and of the handout's code snippets are removed;
   fingerprints found in a large share of the class (``boilerplate_share``) are *common*: they are
   shown but never count; the rarer a fingerprint is in the class, the more it counts.
5. **Score.** A pair's score is the weight of the distinctive fingerprints the two share divided by
   the distinctive weight of the smaller file (at least ``min_evidence``): the share of what is
   particular to a file that the other has too, beyond what is common across the class.
   Fingerprints also found in a public source (staff's folder of tutorials and repositories the
   course links) are reported as such and do not count either.

A file's fingerprints depend only on its bytes and the parameters: ``fingerprint_source`` results
are JSON-serialisable and the site caches them by the file's sha256.
"""
from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

from grader.similarity import simtokens, winnow

VERSION = 1                      # bump when tokens or hashing change: cached fingerprints are then recomputed
KINDS = ("py", "ipynb", "zip")


@dataclass(frozen=True)
class Params:
    k: int = 12                  # tokens per k-gram
    w: int = 4                   # winnowing window: any shared run of k + w - 1 tokens is found
    boilerplate_share: float = 0.2   # a fingerprint in at least this share of the class is common ...
    min_common: int = 5          # ... and in at least this many files (in a small class, a ring of copiers is not "the class")
    min_evidence: float = 6.0    # the smallest denominator: a pair sharing a few lines cannot score 1
    threshold: float = 0.6       # the report's default: pairs at or above it are flagged (bench/similarity.py)

    @property
    def cache_key(self) -> str:
        return f"v{VERSION}-k{self.k}"


DEFAULT = Params()


# =========================================================================== reading

@dataclass
class Source:
    """One submission's code: ``text`` is what line numbers refer to (a notebook's code cells under
    ``# %% cell N`` headers, a zip's files under ``# ==== path ====`` headers)."""
    text: str
    units: list = field(default_factory=list)     # simtokens.Unit, lines in ``text``
    notes: list = field(default_factory=list)


def _decode_text(data: bytes) -> str:
    return data.decode("utf-8-sig", errors="replace").replace("\r\n", "\n").replace("\r", "\n")


def _notebook_code(data: bytes, name: str) -> tuple[str, list[str]]:
    from grader.errors import SubmissionError
    from grader.intake.submission import notebook_to_source

    try:
        source, _notes, _nb = notebook_to_source(data, name)
        return source, []
    except SubmissionError as exc:
        return "", [str(exc)]
    except (RecursionError, MemoryError, ValueError):
        return "", [f"'{name}' could not be read as a notebook."]


def _add_segment(src: Source, code: str, header: str | None) -> None:
    offset = src.text.count("\n")
    if header:
        src.text += header + "\n"
        offset += 1
    units, parsed = simtokens.parse_units(code)
    if not parsed and code.strip():
        src.notes.append(f"{header.strip('# =') if header else 'the file'} does not parse as Python: compared on its raw tokens")
    for u in units:
        u.lines = [ln + offset for ln in u.lines]
    src.units.extend(units)
    src.text += code if code.endswith("\n") or not code else code + "\n"


def read_source(filename: str, data: bytes) -> Source:
    """The code of one submission file (.py, .ipynb or .zip); unreadable parts become notes."""
    kind = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    src = Source("")
    if kind == "ipynb":
        code, notes = _notebook_code(data, filename)
        src.notes += notes
        _add_segment(src, code, None)
    elif kind == "zip":
        from grader.intake import ziparchive

        try:
            with ziparchive.open_zip(data, filename, ziparchive.SUBMISSIONS) as archive:
                members = archive.read()
        except ziparchive.ZipRefused as exc:
            src.notes.append(exc.message)
            return src
        for path in sorted(members):
            if path.endswith(".py"):
                _add_segment(src, _decode_text(members[path]), f"# ==== {path} ====")
            elif path.endswith(".ipynb"):
                code, notes = _notebook_code(members[path], path)
                src.notes += notes
                _add_segment(src, code, f"# ==== {path} ====")
    else:
        _add_segment(src, _decode_text(data), None)
    return src


def snippet_sources(markdown: str) -> list[str]:
    """The Python code blocks of a handout (```python or unlabelled fences) that parse."""
    out = []
    for m in re.finditer(r"^```[ \t]*(\w*)[^\n]*\n(.*?)^```", markdown, re.M | re.S):
        lang, code = m.group(1).lower(), m.group(2)
        if lang in ("", "python", "py", "python3", "pycon", "ipython"):
            out.append(code)
    return out


# =========================================================================== fingerprints

def fingerprint_source(src: Source, params: Params = DEFAULT) -> dict:
    """The file's k-gram hashes per unit and each token's line: JSON, cacheable by sha256."""
    units = []
    for u in src.units:
        units.append({"name": u.name, "h": winnow.kgram_hashes(u.tokens, params.k), "lines": u.lines})
    return {"key": params.cache_key, "units": units, "ntokens": sum(len(u.tokens) for u in src.units)}


def kgram_set(code_or_source, params: Params = DEFAULT) -> set[int]:
    """Every k-gram hash of a piece of code (starter, handout snippet, public source)."""
    src = code_or_source if isinstance(code_or_source, Source) else read_source("snippet.py", code_or_source.encode())
    return {h for u in fingerprint_source(src, params)["units"] for h in u["h"]}


class Doc:
    """A fingerprinted document inside a check: its winnowed fingerprints (starter removed)."""

    def __init__(self, key, fp: dict, params: Params, excluded: set[int]):
        self.key = key
        self.units = fp["units"]
        self.ntokens = fp["ntokens"]
        self.k = params.k
        # tokens covered by excluded (starter / handout) k-grams
        self.excluded_tokens = 0
        self.positions: dict[int, list[tuple[int, int]]] = defaultdict(list)   # hash -> [(unit, index)]
        for ui, u in enumerate(self.units):
            hashes = u["h"]
            ntok = len(u["lines"])
            covered = bytearray(ntok)
            for i, h in enumerate(hashes):
                if h in excluded:
                    covered[i:min(ntok, i + params.k)] = b"\x01" * (min(ntok, i + params.k) - i)
            self.excluded_tokens += sum(covered)
            for i in winnow.winnow(hashes, params.w):
                if hashes[i] not in excluded:
                    self.positions[hashes[i]].append((ui, i))
        self.own_tokens = max(0, self.ntokens - self.excluded_tokens)

    @property
    def hashes(self):
        return self.positions.keys()

    def span_lines(self, unit: int, start: int, end: int) -> tuple[int, int]:
        lines = self.units[unit]["lines"]
        seg = lines[start:min(end, len(lines))] or lines[-1:]
        return min(seg), max(seg)

    def covered_tokens(self, hashes) -> int:
        marks: dict[int, bytearray] = {}
        for h in hashes:
            for ui, i in self.positions.get(h, ()):
                ntok = len(self.units[ui]["lines"])
                m = marks.setdefault(ui, bytearray(ntok))
                end = min(ntok, i + self.k)
                m[i:end] = b"\x01" * (end - i)
        return sum(sum(m) for m in marks.values())


# =========================================================================== the check

@dataclass
class Pair:
    a: object
    b: object
    score: float                 # distinctive shared weight / distinctive weight of the smaller file
    share_a: float               # share of a's own code (starter excluded) in regions b has too
    share_b: float
    beyond_a: float              # the same, counting only what is not common across the class nor public
    beyond_b: float
    shared: int                  # fingerprints shared (distinctive)
    common: int                  # fingerprints shared that are common across the class
    public: int                  # fingerprints shared that a public source has too
    public_sources: list = field(default_factory=list)
    regions: list = field(default_factory=list)   # [{"a": [l1, l2], "b": [l1, l2], "kind", "source"}]

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Report:
    pairs: list                   # Pair, highest score first
    clusters: list                # [[key, ...]] of 3+ files linked by flagged pairs
    params: Params
    n: int
    notes: dict = field(default_factory=dict)   # key -> [note]

    def flagged(self) -> list:
        return [p for p in self.pairs if p.score >= self.params.threshold]


class Check:
    """One comparison of a class's documents.

    ``fingerprints``: key -> fingerprint_source(...) of each student's latest submission;
    ``excluded``: k-gram hashes of starter code and handout snippets;
    ``public``: name -> k-gram hashes of each public source."""

    def __init__(self, fingerprints: dict, excluded: set[int] = frozenset(), public: dict | None = None,
                 params: Params = DEFAULT):
        self.params = params
        self.docs = {key: Doc(key, fp, params, set(excluded)) for key, fp in fingerprints.items()}
        self.public = public or {}
        self.public_any: dict[int, list[str]] = defaultdict(list)
        for name, hashes in self.public.items():
            for h in hashes:
                self.public_any[h].append(name)
        self.df: dict[int, int] = defaultdict(int)
        for d in self.docs.values():
            for h in d.hashes:
                self.df[h] += 1
        n = len(self.docs)
        self.n = n
        self.cut = max(params.min_common, math.ceil(params.boilerplate_share * n))
        self._log_norm = math.log(n / 2) if n > 2 else 1.0
        self.mass = {key: sum(self.weight(h) for h in d.hashes) for key, d in self.docs.items()}

    def common(self, h: int) -> bool:
        return self.df.get(h, 0) >= self.cut

    def weight(self, h: int) -> float:
        """What one shared fingerprint counts: 0 when common or public, 1 when only two files have
        it, and in between by its rarity in the class."""
        if h in self.public_any or self.common(h):
            return 0.0
        df = max(self.df.get(h, 1), 2)
        if self.n <= 2:
            return 1.0
        return max(0.0, min(1.0, math.log(self.n / df) / self._log_norm))

    def candidates(self) -> dict[tuple, list[int]]:
        """Pairs sharing at least one fingerprint that is not common: (a, b) -> shared hashes."""
        index: dict[int, list] = defaultdict(list)
        for key, d in self.docs.items():
            for h in d.hashes:
                if not self.common(h):
                    index[h].append(key)
        shared: dict[tuple, list[int]] = defaultdict(list)
        for h, keys in index.items():
            if len(keys) < 2:
                continue
            keys.sort(key=str)
            for i, a in enumerate(keys):
                for b in keys[i + 1:]:
                    shared[(a, b)].append(h)
        return shared

    def pair(self, a, b, hashes: list[int] | None = None, with_regions: bool = True) -> Pair:
        da, db = self.docs[a], self.docs[b]
        if hashes is None:
            hashes = [h for h in da.hashes if h in db.positions]
        every = [h for h in da.hashes if h in db.positions]
        distinctive = [h for h in hashes if not self.common(h) and h not in self.public_any]
        public = [h for h in every if h in self.public_any and not self.common(h)]
        common = [h for h in every if self.common(h)]
        weight = sum(self.weight(h) for h in distinctive)
        denom = max(min(self.mass[a], self.mass[b]), self.params.min_evidence)
        score = min(1.0, weight / denom)
        def share(doc, hs):
            return round(min(1.0, doc.covered_tokens(hs) / doc.own_tokens), 4) if doc.own_tokens else 0.0

        sources = sorted({name for h in public for name in self.public_any[h]})
        p = Pair(a, b, round(score, 4), share(da, every), share(db, every), share(da, distinctive),
                 share(db, distinctive), len(distinctive), len(common), len(public), sources)
        if with_regions:
            p.regions = self.regions(a, b, every)
        return p

    def regions(self, a, b, hashes: list[int]) -> list[dict]:
        """Matching regions of a pair, each as line ranges in both files; a region's ``kind`` is
        ``copy`` (distinctive), ``public`` (a public source has it; ``source`` names it) or ``common``."""
        da, db, k = self.docs[a], self.docs[b], self.params.k
        matches = []
        for h in hashes:
            kind = "common" if self.common(h) else ("public" if h in self.public_any else "copy")
            pa, pb = da.positions[h][0], db.positions[h][0]
            matches.append((pa, pb, kind, h))
        matches.sort(key=lambda m: (m[2], m[0], m[1]))   # each kind chained on its own
        blocks: list[dict] = []
        gap = k + self.params.w
        for (ua, ia), (ub, ib), kind, h in matches:
            last = blocks[-1] if blocks else None
            if (last and last["kind"] == kind and last["ua"] == ua and last["ub"] == ub
                    and 0 <= ia - last["ia1"] <= gap and abs((ib - last["ib1"]) - (ia - last["ia1"])) <= gap):
                last["ia1"], last["ib1"] = ia, max(ib, last["ib1"])
                last["hashes"].append(h)
                continue
            blocks.append({"kind": kind, "ua": ua, "ub": ub, "ia0": ia, "ia1": ia, "ib0": ib, "ib1": ib,
                           "hashes": [h]})
        out = []
        for bl in blocks:
            la = da.span_lines(bl["ua"], bl["ia0"], bl["ia1"] + k)
            lb = db.span_lines(bl["ub"], min(bl["ib0"], bl["ib1"]), max(bl["ib0"], bl["ib1"]) + k)
            region = {"a": list(la), "b": list(lb), "kind": bl["kind"]}
            if bl["kind"] == "public":
                region["source"] = sorted({n for h in bl["hashes"] for n in self.public_any[h]})[0]
            out.append(region)
        order = {"copy": 0, "public": 1, "common": 2}
        out.sort(key=lambda r: (order[r["kind"]], r["a"][0]))
        return out

    def run(self, min_score: float = 0.0, progress=None) -> Report:
        """Every pair above ``min_score`` (or sharing a public source) with its regions, best first,
        and the clusters."""
        shared = self.candidates()
        pairs = []
        total = len(shared) or 1
        for i, ((a, b), hashes) in enumerate(shared.items()):
            weight = sum(self.weight(h) for h in hashes)
            denom = max(min(self.mass[a], self.mass[b]), self.params.min_evidence)
            # a pair that shares a public source is listed too (marked as such), whatever its score
            public = sum(1 for h in hashes if h in self.public_any)
            if (weight / denom >= min_score and weight > 0) or public >= self.params.min_evidence:
                pairs.append(self.pair(a, b, hashes))
            if progress and i % 500 == 0:
                progress(i, total)
        pairs.sort(key=lambda p: (-p.score, -(p.beyond_a + p.beyond_b), str(p.a), str(p.b)))
        return Report(pairs, clusters(pairs, self.params.threshold), self.params, self.n)


def clusters(pairs: list, threshold: float) -> list[list]:
    """Groups of three or more files linked by flagged pairs (connected components)."""
    parent: dict = {}

    def find(x):
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for p in pairs:
        if p.score >= threshold:
            parent[find(p.a)] = find(p.b)
    groups: dict = defaultdict(list)
    for x in list(parent):
        groups[find(x)].append(x)
    return sorted((sorted(g, key=str) for g in groups.values() if len(g) >= 3), key=lambda g: (-len(g), str(g[0])))


# =========================================================================== folders (the terminal)

def read_file(path: Path) -> Source:
    return read_source(path.name, path.read_bytes())


def files_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower().lstrip(".") in KINDS
                  and not any(part.startswith(".") or part == "__pycache__" for part in p.relative_to(folder).parts))


def check_folder(folder: Path, starters=(), handouts=(), public_dir: Path | None = None,
                 params: Params = DEFAULT, min_score: float = 0.0) -> tuple[Report, dict]:
    """Compare every file under ``folder``: (report, sources by relative path)."""
    sources = {str(p.relative_to(folder)): read_file(p) for p in files_in(folder)}
    excluded: set[int] = set()
    for s in starters:
        excluded |= kgram_set(read_file(Path(s)), params)
    for h in handouts:
        for code in snippet_sources(Path(h).read_text(encoding="utf-8", errors="replace")):
            excluded |= kgram_set(code, params)
    public = {}
    if public_dir:
        for p in files_in(public_dir):
            public[str(p.relative_to(public_dir))] = kgram_set(read_file(p), params)
    check = Check({k: fingerprint_source(s, params) for k, s in sources.items()}, excluded, public, params)
    report = check.run(min_score)
    report.notes = {k: s.notes for k, s in sources.items() if s.notes}
    return report, sources


def ranges(lines: list[list[int]]) -> str:
    return ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in lines)
