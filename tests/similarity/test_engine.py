"""The similarity engine (grader/similarity/) on the course's own packs: planted copies of each
pack's reference found and ranked first, independent correct solutions below every copy,
starter-only submissions never flagged, notebooks and zips compared on their code."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tomllib
import zipfile
from itertools import combinations
from pathlib import Path

import pytest

from grader import similarity
from grader.similarity.simtokens import parse_units
from tests.similarity.variants import disguise

ROOT = Path(__file__).resolve().parents[2]
PACKS = sorted(p for p in (ROOT / "assignments").iterdir() if (p / "reference.py").is_file())
INDEPENDENT = Path(__file__).parent / "independent"


def required(pack: Path) -> set[str]:
    return set(tomllib.loads((pack / "assignment.toml").read_text()).get("required", []))


def excluded(pack: Path) -> set[int]:
    out: set[int] = set()
    for name in ("starter.py", "starter.ipynb"):
        if (pack / name).is_file():
            out |= similarity.kgram_set(similarity.read_file(pack / name))
    for code in similarity.snippet_sources((pack / "handout.md").read_text()):
        out |= similarity.kgram_set(code)
    return out


def run(docs: dict[str, tuple[str, bytes]], pack: Path | None = None, public: dict | None = None,
        params=similarity.DEFAULT) -> similarity.Report:
    fps = {key: similarity.fingerprint_source(similarity.read_source(name, data), params)
           for key, (name, data) in docs.items()}
    return similarity.Check(fps, excluded(pack) if pack else set(), public, params).run()


def score_of(report, a, b) -> float:
    for p in report.pairs:
        if {p.a, p.b} == {a, b}:
            return p.score
    return 0.0


def independent_solutions(pack: Path) -> dict[str, tuple[str, bytes]]:
    docs = {}
    for f in sorted((pack / "solutions").glob("*")):
        if f.suffix in (".py", ".ipynb"):
            docs[f"solution:{f.name}"] = (f.name, f.read_bytes())
    if pack.name == "attention":
        for f in sorted(INDEPENDENT.glob("attention_*.py")):
            docs[f"independent:{f.name}"] = (f.name, f.read_bytes())
    return docs


@pytest.mark.parametrize("pack", PACKS, ids=[p.name for p in PACKS])
def test_planted_copies_of_the_reference_rank_first_and_independent_solutions_below(pack):
    ref = (pack / "reference.py").read_text()
    docs = {"reference": ("reference.py", ref.encode())}
    for seed in (1, 2):
        copy = disguise(ref, seed, keep=required(pack))
        assert copy != ref
        docs[f"copy{seed}"] = (f"copy{seed}.py", copy.encode())
    docs.update(independent_solutions(pack))
    assert len(docs) >= 5
    report = run(docs, pack)
    planted = [frozenset(p) for p in combinations(["reference", "copy1", "copy2"], 2)]
    top = [frozenset((p.a, p.b)) for p in report.pairs[:3]]
    assert set(top) == set(planted), [(p.a, p.b, p.score) for p in report.pairs[:5]]
    threshold = report.params.threshold
    copies = [score_of(report, *sorted(p)) for p in planted]
    assert min(copies) >= threshold, copies
    others = [p for p in report.pairs if frozenset((p.a, p.b)) not in planted]
    assert all(p.score < threshold for p in others), [(p.a, p.b, p.score) for p in others if p.score >= threshold]
    assert all(p.score < min(copies) for p in others)
    # the flagged pairs are exactly the planted ones, and they form one cluster of three
    assert {frozenset((p.a, p.b)) for p in report.flagged()} == set(planted)
    assert report.clusters == [["copy1", "copy2", "reference"]]
    # a copy covers most of the other file, and its regions are line ranges of both files
    best = report.pairs[0]
    assert best.share_a > 0.5 and best.share_b > 0.5
    assert any(r["kind"] == "copy" for r in best.regions)
    for r in best.regions:
        assert 1 <= r["a"][0] <= r["a"][1] and 1 <= r["b"][0] <= r["b"][1]


def test_independent_attention_implementations_are_not_flagged_among_themselves():
    """einsum, matmul, baddbmm, row loops, logsumexp, a class: ten correct, different solutions
    (the pack's and these) share what every attention shares, and no pair is flagged."""
    pack = ROOT / "assignments" / "attention"
    docs = independent_solutions(pack)
    assert len(docs) >= 10
    report = run(docs, pack)
    assert report.flagged() == []
    assert max(p.score for p in report.pairs) < 0.35


def test_starter_only_submissions_are_not_flagged():
    pack = ROOT / "assignments" / "attention"
    starter = (pack / "starter.py").read_bytes()
    docs = {f"starter{i}": ("attention.py", starter) for i in range(4)}
    # the starter with comments and blank lines added, and the starter notebook
    docs["starter-commented"] = ("attention.py", b"# my attempt\n" + starter.replace(b"\n\n", b"\n\n# todo\n\n"))
    docs["starter-notebook"] = ("attention.ipynb", (pack / "starter.ipynb").read_bytes())
    docs.update(independent_solutions(pack))
    report = run(docs, pack)
    starters = {k for k in docs if k.startswith("starter")}
    for p in report.pairs:
        if {p.a, p.b} & starters:
            assert p.score < report.params.threshold, (p.a, p.b, p.score)
    assert report.flagged() == []
    # without the starter excluded (and nothing common), the identical files would be flagged: the
    # exclusion is what works
    fps = {k: similarity.fingerprint_source(similarity.read_source(n, d)) for k, (n, d) in docs.items()}
    bare = similarity.Check(fps, set(), params=similarity.Params(boilerplate_share=1.0)).run()
    assert any({p.a, p.b} <= starters for p in bare.flagged())


def _notebook(cells: list[str]) -> bytes:
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "code", "id": f"c{i}", "metadata": {}, "execution_count": None, "outputs": [], "source": src}
        for i, src in enumerate(cells)] + [
        {"cell_type": "markdown", "id": "md", "metadata": {}, "source": "# My notes"}]}).encode()


def test_a_notebook_copied_into_a_py_file_is_found():
    pack = ROOT / "assignments" / "embeddings_notebook"
    docs = independent_solutions(pack)
    original = sorted(docs)[0]
    name, data = docs[original]
    nb = json.loads(data)
    code = "\n\n".join("".join(c["source"]) if isinstance(c["source"], list) else c["source"]
                       for c in nb["cells"] if c["cell_type"] == "code")
    code = "\n".join(ln for ln in code.splitlines() if not ln.lstrip().startswith(("%", "!")))
    docs["copied.py"] = ("copied.py", disguise(code, 7).encode())
    report = run(docs, pack)
    assert {report.pairs[0].a, report.pairs[0].b} == {original, "copied.py"}
    assert report.pairs[0].score >= report.params.threshold
    assert len(report.flagged()) == 1


def test_a_py_file_pasted_into_notebook_cells_in_another_order_is_found():
    pack = ROOT / "assignments" / "attention"
    ref = (pack / "solutions" / "loops.py").read_text()
    helper, _, main = ref.partition("def scaled_dot_product_attention")
    cells = ["def scaled_dot_product_attention" + main, "%matplotlib inline\n" + helper, "print('done')"]
    docs = independent_solutions(pack)
    docs["nb"] = ("attention.ipynb", _notebook(cells))
    report = run(docs, pack)
    assert {report.pairs[0].a, report.pairs[0].b} == {"solution:loops.py", "nb"}
    assert report.pairs[0].score >= 0.9


def test_a_zip_is_compared_on_its_python_files():
    pack = ROOT / "assignments" / "attention"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("project/README.md", "my project")
        z.writestr("project/utils.py", "def helper(x):\n    return x\n")
        z.writestr("project/attention.py", disguise((pack / "solutions" / "nan_to_num.py").read_text(), 3,
                                                    keep={"scaled_dot_product_attention"}))
    docs = independent_solutions(pack)
    docs["zipped"] = ("submission.zip", buf.getvalue())
    report = run(docs, pack)
    assert {report.pairs[0].a, report.pairs[0].b} == {"solution:nan_to_num.py", "zipped"}
    src = similarity.read_source("submission.zip", buf.getvalue())
    assert "# ==== project/attention.py ====" in src.text
    # the regions' line numbers point into the zip's text as shown (headers included)
    lines = src.text.split("\n")
    side = "a" if report.pairs[0].a == "zipped" else "b"
    region = next(r for r in report.pairs[0].regions if r["kind"] == "copy")
    header = lines.index("# ==== project/attention.py ====") + 1
    assert header < region[side][0] <= region[side][1] <= len(lines)
    assert "def scaled_dot_product_attention" in "\n".join(lines[region[side][0] - 1: region[side][1]])


def test_renaming_reordering_comments_and_prints_leave_the_fingerprints_unchanged():
    ref = (ROOT / "assignments" / "generation" / "reference.py").read_text()
    copy = disguise(ref, 11, keep=required(ROOT / "assignments" / "generation"))
    a = similarity.fingerprint_source(similarity.read_source("a.py", ref.encode()))
    b = similarity.fingerprint_source(similarity.read_source("b.py", copy.encode()))
    assert sorted(h for u in a["units"] for h in u["h"]) == sorted(h for u in b["units"] for h in u["h"])


def test_tokens_normalise_names_and_literals_but_keep_library_calls():
    units, parsed = parse_units("import torch.nn.functional as F\nimport torch\n\n"
                                "def f(x, y=3):\n    '''doc'''\n    print(x)\n    return F.softmax(x * y, dim=-1)\n\n"
                                "def g(a, b=5):\n    return torch.nn.functional.softmax(a * b, dim=-2)\n")
    assert parsed
    f, g = units
    assert f.tokens == g.tokens
    assert "M:torch.nn.functional.softmax" in f.tokens and "S" not in f.tokens


def test_public_sources_are_marked_and_do_not_count():
    pack = ROOT / "assignments" / "attention"
    tutorial = (pack / "solutions" / "annotated_transformer.py").read_text()
    docs = independent_solutions(pack)
    docs.pop("solution:annotated_transformer.py")
    docs["s1"] = ("a.py", disguise(tutorial, 1).encode())
    docs["s2"] = ("b.py", disguise(tutorial, 2).encode())
    without = run(docs, pack)
    assert score_of(without, "s1", "s2") >= without.params.threshold
    public = {"annotated-transformer.py": similarity.kgram_set(tutorial)}
    report = run(docs, pack, public=public)
    pair = next(p for p in report.pairs if {p.a, p.b} == {"s1", "s2"}) if any(
        {p.a, p.b} == {"s1", "s2"} for p in report.pairs) else None
    # everything the two share is the tutorial's: marked as such, and the pair is no longer flagged
    assert score_of(report, "s1", "s2") < report.params.threshold
    if pair is not None:
        assert pair.public > 0 and pair.public_sources == ["annotated-transformer.py"]
    fps = {k: similarity.fingerprint_source(similarity.read_source(n, d)) for k, (n, d) in docs.items()}
    check = similarity.Check(fps, excluded(pack), public)
    p = check.pair("s1", "s2")
    assert p.public > 0 and p.public_sources == ["annotated-transformer.py"]
    assert any(r["kind"] == "public" and r["source"] == "annotated-transformer.py" for r in p.regions)


def test_code_common_across_the_class_is_discounted():
    """A helper most of the class pasted from a forum is common: shown, not counted."""
    pack = ROOT / "assignments" / "attention"
    helper = ("def check_shapes(q, k, v):\n    assert q.shape[-1] == k.shape[-1], (q.shape, k.shape)\n"
              "    assert k.shape[-2] == v.shape[-2], (k.shape, v.shape)\n    return q.shape[:-2]\n")
    docs = {key: (name, helper.encode() + b"\n" + data) for key, (name, data) in independent_solutions(pack).items()
            if name.endswith(".py")}
    report = run(docs, pack)
    assert report.flagged() == []
    p = report.pairs[0]
    assert p.common > 0


def test_fingerprints_are_stable_across_processes():
    """Cached fingerprints (by sha256) are compared with fresh ones: no salted hash() anywhere."""
    code = (ROOT / "assignments" / "attention" / "reference.py").read_text()
    here = similarity.fingerprint_source(similarity.read_source("a.py", code.encode()))
    prog = ("import json, sys; from grader import similarity as s; "
            "print(json.dumps(s.fingerprint_source(s.read_source('a.py', sys.stdin.buffer.read()))))")
    for seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", prog], input=code.encode(), capture_output=True, check=True,
                             env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)})
        assert json.loads(out.stdout) == json.loads(json.dumps(here))


def test_files_that_do_not_parse_are_still_compared():
    broken = (ROOT / "assignments" / "attention" / "reference.py").read_text() + "\ndef oops(:\n    pass\n"
    docs = {"x": ("x.py", broken.encode()), "y": ("y.py", broken.replace("scores", "s").encode()),
            "z": ("z.py", (ROOT / "assignments" / "attention" / "solutions" / "einsum.py").read_bytes())}
    report = run(docs)
    assert {report.pairs[0].a, report.pairs[0].b} == {"x", "y"} and report.pairs[0].score >= 0.5
    assert similarity.read_source("x.py", broken.encode()).notes
