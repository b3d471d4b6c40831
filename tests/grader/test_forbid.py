"""The engine's forbidden-API mechanism ([forbid] in assignment.toml): the source scan in the
trusted process, the stubs installed in the sandbox before the submission is imported, and the
validation of the table. Plus the small pack.py requests ([leaderboard], slug)."""
from __future__ import annotations

import json
import shutil

import nbformat
import pytest

from grader.api import grade
from grader.authoring.pack import load_pack, validate_meta
from grader.errors import PackError
from grader.intake import forbid
from grader_testutil import PACKS

PACK = PACKS / "forbid"
CFG = load_pack(PACK).meta["forbid"]
MESSAGE = "is not allowed in this assignment (see the handout: write it yourself)"
REFUSED = "which this assignment does not allow (see the handout: write it yourself). Every test fails until it is removed."


def _scan(source: str, **changes) -> set[str]:
    return forbid.scan(source, dict(CFG, **changes))


# ------------------------------------------------------------------ scan (trusted process, no sandbox)

@pytest.mark.parametrize("source, found", [
    ("import sqlite3\n", {"sqlite3"}),
    ("import sqlite3.dbapi2 as db\n", {"sqlite3"}),
    ("from sqlite3 import connect\n", {"sqlite3"}),
    ("import xml.dom.minidom\n", {"xml.dom"}),
    ("from xml import dom\n", {"xml.dom"}),               # a forbidden submodule imported by name
    ("from torch.nn.functional import softmax as s\n", {"softmax"}),
    ("import torch\ny = torch.nn.functional.softmax(x, -1)\n", {"softmax"}),
    ("def f(x):\n    return x.log_softmax(-1)\n", {"log_softmax"}),
    ("g = softmax\n", {"softmax"}),                         # a plain name
    ("f = getattr(F, 'softmax')\n", {"softmax"}),           # a string constant equal to a name
    ("m = __import__(' sqlite3 ')\n", {"sqlite3"}),         # ... or to a module
    ("c = counter.most_common(3)\n", {"most_common"}),      # an attribute-only name as an attribute
    ("from collections import *\nimport sqlite3\ntry:\n    x.softmax\nexcept Exception:\n    pass\n",
     {"sqlite3", "softmax"}),
])
def test_scan_finds_forbidden_use(source, found):
    assert _scan(source) == found


@pytest.mark.parametrize("source", [
    "import xml.etree.ElementTree as ET\nimport sqlite3x\n",     # other modules, prefix-alikes
    "def most_common(xs):\n    return max(xs)\nmost_common([1])\n",  # attribute-only: the student's own name
    "x = 'most_common'\n",                                        # attribute-only names ignore strings
    "s = 'softmax is what we avoid here'\n# softmax in a comment\n",  # not equal to a name
    "from .sqlite3 import x\nfrom . import sqlite3\n",             # relative imports are the student's files
    "def f(:\n",                                                   # a syntax error is the import's to report
    "if __name__ == '__main__':\n    import sqlite3\n    print(torch.softmax(x, 0))\n",
    "if '__main__' == __name__:\n    import sqlite3\n",
])
def test_scan_allows(source):
    assert _scan(source) == set()


# The student's own names: a name the submission defines (any level) is not the library's.
OWN_SOFTMAX = "def softmax(x, dim=-1):\n    e = x.exp()\n    return e / e.sum(dim, keepdim=True)\n"


@pytest.mark.parametrize("source", [
    OWN_SOFTMAX + "y = softmax(x)\n",                                       # a top-level def and its call
    "import torch\n" + OWN_SOFTMAX + "class M(torch.nn.Module):\n    def forward(self, x):\n        return softmax(x)\n",
    "class M:\n    def softmax(self, x):\n        return x\n    def f(self, x):\n        return self.softmax(x)\n",
    "def outer(x):\n    def softmax(z):\n        return z\n    return softmax(x)\n",   # nested function
    "class Softmax:\n    pass\nsoftmax = Softmax()\ny = softmax\n",           # an assignment
    "ys = [softmax for softmax in range(3)]\n",                                # a comprehension target
    "f = lambda softmax: softmax + 1\n",                                        # a parameter
    "for softmax in (1, 2):\n    print(softmax)\n",
    "with open('f') as softmax:\n    softmax.read()\n",
    "if (softmax := 3):\n    print(softmax)\n",
    "try:\n    pass\nexcept ValueError as softmax:\n    print(softmax)\n",
    "__all__ = ['softmax']\n" + OWN_SOFTMAX,                                # a string naming their own function
    "class C:\n    def __init__(self):\n        self.softmax = lambda x: x\n    def g(self, x):\n        return self.softmax(x)\n",
    "from .helper import softmax\ny = softmax(1)\n",                       # the student's own files
    "from helper import softmax as sm\nimport helper\ny = sm(1) + helper.softmax(2)\n",
    "class Counter2:\n    def most_common(self):\n        return 1\nCounter2().most_common()\n",
    "class K:\n    softmax = staticmethod(lambda x: x)\ny = K().softmax(1)\n",       # a class attribute
])
def test_scan_allows_the_students_own_names(source):
    assert forbid.scan(source, CFG, local_modules={"helper"}) == set()


@pytest.mark.parametrize("source, found", [
    ("import torch.nn.functional as F\n" + OWN_SOFTMAX + "y = F.softmax(x, -1)\n", {"softmax"}),
    ("from torch.nn import functional as F\n" + OWN_SOFTMAX + "y = F.softmax(x, -1)\n", {"softmax"}),
    ("import torch\n" + OWN_SOFTMAX + "y = torch.nn.functional.softmax(x, -1)\n", {"softmax"}),
    ("from torch.nn.functional import softmax\n" + OWN_SOFTMAX, {"softmax"}),
    ("from torch.nn.functional import softmax as my_softmax\ny = my_softmax(x)\n", {"softmax"}),
    ("import torch.nn.functional as F\n" + OWN_SOFTMAX + "g = getattr(F, 'softmax')\n", {"softmax"}),
    ("import torch\n" + OWN_SOFTMAX + "g = getattr(torch.nn.functional, 'softmax')\n", {"softmax"}),
    ("import torch.nn.functional as F\n" + OWN_SOFTMAX + "softmax = F.softmax\n", {"softmax"}),
    ("def f(x):\n    return x.softmax(-1)\n", {"softmax"}),                # a tensor method: not defined by them
    (OWN_SOFTMAX + "def f(x):\n    return x.softmax(-1)\n", {"softmax"}),  # their function is not an attribute
    ("def most_common(xs):\n    return xs\nn = counter.most_common()\n", {"most_common"}),   # (model.generate
                                                                                # next to their own generate())
    ("from json import softmax\n", {"softmax"}),                            # an installed module's name
    ("import json\ny = json.softmax(1)\n", {"softmax"}),
    ("import collections\nclass C:\n    def most_common(self):\n        return 1\n"
     "n = collections.Counter('ab').most_common()\n", {"most_common"}),   # through the module, not their class
])
def test_scan_refuses_library_names_next_to_own_ones(source, found):
    assert forbid.scan(source, CFG) == found


def test_a_module_that_does_not_exist_is_not_a_library():
    """`from attention import scaled_dot_product_attention` without attention.py in the upload: the
    import fails with "No module named 'attention'", which is the message the student needs."""
    assert forbid.scan("from grader_no_such_module_xyz import softmax\nsoftmax(1)\n", CFG) == set()
    assert forbid.scan("import grader_no_such_module_xyz as m\nm.softmax(1)\n", CFG) == set()
    # a forbidden module is refused whether or not it is installed
    assert forbid.scan("from grader_no_such_module_xyz import softmax\n", dict(CFG, modules=["grader_no_such_module_xyz"])) \
        == {"grader_no_such_module_xyz"}
    res = _grade("from grader_no_such_module_xyz import softmax\n\ndef run(x):\n    return 2 * x\n")
    assert res["status"] == "error" and "No module named 'grader_no_such_module_xyz'" in res["message"], res["message"]


def test_scan_files_knows_the_zips_own_modules():
    files = {"sub.py": b"from helper import softmax\n\ndef run(x):\n    return softmax(x)\n",
             "helper.py": OWN_SOFTMAX.encode(), "pkg/__init__.py": b"", "pkg/ops.py": OWN_SOFTMAX.encode(),
             "other.py": b"from pkg.ops import softmax\nimport pkg.ops as ops\ny = ops.softmax(1)\n"}
    assert forbid.scan_files(files, CFG) == []
    files["helper.py"] = b"from torch.nn.functional import softmax\n"
    assert forbid.scan_files(files, CFG) == ["softmax"]


def test_scan_survives_deep_nesting():
    assert forbid.scan("x = " + "(" * 5000 + "1" + ")" * 5000 + "\n", CFG) == set()


def test_own_function_with_a_forbidden_name_is_graded_and_the_stub_still_guards():
    own = ("import torch\n\ndef softmax(x, dim=0):\n    e = torch.exp(x - x.max())\n    return e / e.sum()\n\n"
           "def run(x):\n    return int(round(float(softmax(torch.zeros(2))[0]) * 4 * x))\n")
    res = _grade(own)
    assert res["score"] == 3.0 and res["status"] == "graded", _messages(res)
    sneaky = own.replace("softmax(torch.zeros(2))", "getattr(torch, 'soft' + 'max')(torch.zeros(2), 0)")
    res = _grade(sneaky)
    assert res["score"] == 0.0
    visible = [t["message"] for t in res["tests"] if t["visible"]]
    assert len(visible) == 2 and all(f"torch.softmax {MESSAGE}" in m for m in visible), visible


def test_scan_main_guard_else_branch_and_other_ifs_are_scanned():
    assert _scan("if __name__ == '__main__':\n    pass\nelse:\n    import sqlite3\n") == {"sqlite3"}
    assert _scan("if __name__ != '__main__':\n    import sqlite3\n") == {"sqlite3"}
    assert _scan("if __name__ == 'sub':\n    y = F.softmax(x)\n") == {"softmax"}


def test_scan_strings_can_be_switched_off():
    assert _scan("f = getattr(F, 'softmax')\n", strings=False) == set()
    assert _scan("f = getattr(F, 'softmax')\ny = F.softmax(x)\n", strings=False) == {"softmax"}


def test_scan_files_labels_and_refusal_message():
    used = forbid.scan_files({"sub.py": b"c.most_common()\nimport sqlite3\n", "helper.py": b"y = F.softmax(x)\n",
                              "data.txt": b"import sqlite3", "notes.ipynb": b"softmax"}, CFG)
    assert used == ["Counter.most_common", "softmax", "sqlite3"]
    assert forbid.refusal(used, CFG) == f"Your code uses Counter.most_common, softmax, sqlite3, {REFUSED}"


# ------------------------------------------------------------------ graded through the sandbox

def _grade(source, filename="sub.py"):
    data = source.encode() if isinstance(source, str) else source
    return grade(PACK, filename, data)


def _messages(res):
    return [t["message"] for t in res["tests"]]


def test_reference_passes_and_source_files_are_exposed():
    src = (PACK / "reference.py").read_text()
    res = _grade(src)
    assert res["score"] == 3.0 and res["status"] == "graded", _messages(res)
    files = [json.loads(n[len("FILES:"):]) for n in res["notes"] if n.startswith("FILES:")]
    assert files == [{"sub.py": src}]


def test_static_use_fails_every_test_without_running_anything():
    src = "import torch\nprint('ran')\n\ndef run(x):\n    return torch.softmax(torch.tensor([x]), 0) * 0 + 2 * x\n"
    res = _grade(src)
    assert res["status"] == "graded" and res["score"] == 0.0
    assert res["message"] == f"0/3 points. Your code uses softmax, {REFUSED}"
    assert [t["status"] for t in res["tests"]] == ["failed"] * 3
    assert _messages(res) == [f"Your code uses softmax, {REFUSED}"] * 3
    assert res["output"] == ""              # the submission was never imported
    assert not any(n.startswith("FILES:") for n in res["notes"])


def test_static_use_in_a_zip_helper_and_in_a_notebook_is_found():
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("sub.py", "from helper import twice\n\ndef run(x):\n    return twice(x)\n")
        zf.writestr("helper.py", "import sqlite3\n\ndef twice(x):\n    return 2 * x\n")
    res = _grade(buf.getvalue(), "sub.zip")
    assert res["score"] == 0 and f"Your code uses sqlite3, {REFUSED}" in res["message"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("from xml.dom import minidom"),
                                         nbformat.v4.new_code_cell("def run(x):\n    return 2 * x")])
    res = _grade(nbformat.writes(nb), "sub.ipynb")
    assert res["score"] == 0 and f"Your code uses xml.dom, {REFUSED}" in res["message"]


def test_main_guard_use_is_allowed():
    src = ((PACK / "reference.py").read_text()
           + "\n\nif __name__ == '__main__':\n    import sqlite3, torch\n    print(torch.softmax(torch.ones(2), 0))\n")
    assert _grade(src)["score"] == 3.0


DYNAMIC = '''import collections
import statistics
import torch


def run(x):
    if x == 1:
        return int(getattr(torch.nn.functional, "soft" + "max")(torch.ones(2), 0).sum() * 2)
    if x == 2:
        return int(getattr(statistics, "f" + "mean")([4.0]))
    return getattr(collections.Counter("aab"), "most_" + "common")()
'''


def test_dynamic_lookup_raises_the_stub_message():
    res = _grade(DYNAMIC)
    assert res["status"] == "graded" and res["score"] == 0.0
    first, second, third = _messages(res)
    assert f"run raised ForbiddenAPIError: torch.nn.functional.softmax {MESSAGE}" in first
    assert 'File "sub.py", line 8, in run' in first          # the student's line, not the stub's
    assert f"statistics.fmean {MESSAGE}" in second           # a wildcard patch ("*mean")
    assert third == "Your code raised an exception during this hidden test (its details are not shown)."
    res = _grade(DYNAMIC.replace("if x == 1:", "if x == 7:"))  # the visible first case reaches most_common
    assert f"Counter.most_common {MESSAGE}" in _messages(res)[0]   # a method patched on the class, with its label


def test_lookup_at_import_time_gets_the_stub_too():
    """The stubs are installed before the submission is imported: a reference captured at the top
    level is the stub, and a call at the top level fails the import."""
    captured = ('import torch\n_sm = getattr(torch, "soft" + "max")\n\n'
                'def run(x):\n    return int(_sm(torch.ones(2), 0).sum()) * 2 * x\n')
    res = _grade(captured)
    assert res["score"] == 0.0 and all(f"torch.softmax {MESSAGE}" in t["message"] for t in res["tests"] if t["visible"])
    at_import = 'import torch\n_w = getattr(torch, "soft" + "max")(torch.ones(2), 0)\n\ndef run(x):\n    return 2 * x\n'
    res = _grade(at_import)
    assert res["status"] == "error" and res["score"] == 0.0
    assert f"ForbiddenAPIError: torch.softmax {MESSAGE}" in res["message"]


def test_forbidden_module_is_blocked_in_the_sandbox_even_after_sys_modules_is_cleared():
    src = ('import importlib, sys\n\ndef run(x):\n'
           '    if x == 1:\n        importlib.import_module("sql" + "ite3")\n'
           '    if x == 2:\n        sys.modules.pop("sql" + "ite3", None)\n        importlib.import_module("sql" + "ite3")\n'
           '    if x == 5:\n        importlib.import_module("xml." + "dom.minidom")\n'
           '    return 2 * x\n')
    first, second, third = _messages(_grade(src))
    assert "ModuleNotFoundError: import of sqlite3 halted" in first
    assert f"ModuleNotFoundError: import of sqlite3 {MESSAGE}" in second
    assert third.startswith("Your code raised an exception during this hidden test")
    first = _messages(_grade(src.replace("if x == 5:", "if x == 1:").replace("if x == 1:\n        importlib.import_module(\"sql\"", "if x == 9:\n        importlib.import_module(\"sql\"", 1)))[0]
    assert "run raised ModuleNotFoundError: No module named 'xml.dom.minidom'; 'xml.dom' is not a package" in first
    # modules outside the list still import (xml.etree next to the forbidden xml.dom)
    ok = 'import importlib\n\ndef run(x):\n    importlib.import_module("xml." + "etree.ElementTree")\n    return 2 * x\n'
    assert _grade(ok)["score"] == 3.0


def test_stubs_stay_in_their_sandbox():
    """A pack without [forbid] graded right after sees the real library in its own sandbox."""
    _grade(DYNAMIC)
    res = grade(PACKS / "probe", "probe.py",
                b"import torch\n\ndef probe(info):\n    return float(getattr(torch, 'soft' + 'max')(torch.zeros(2), 0)[0])\n")
    value = [json.loads(n[len("PROBE:"):]) for n in res["notes"] if n.startswith("PROBE:")]
    assert value == [0.5], res["tests"]


def _spy_primed(monkeypatch) -> list[bool]:
    from grader.sandbox import pool

    seen: list[bool] = []
    real = pool.Zygote.acquire

    def acquire(self, *a, **kw):
        sb = real(self, *a, **kw)
        seen.append(sb.primed)
        return sb

    monkeypatch.setattr(pool.Zygote, "acquire", acquire)
    return seen


def test_primed_spares_hold_the_stubs_and_serve_only_their_pack(monkeypatch):
    """The zygote primes spares with the forbid rules of the pack last asked for (off the grading
    path): a grade through a primed sandbox still meets every stub, and a pack with other rules
    (here none) graded next never gets a sandbox primed for the first one."""
    import time

    seen = _spy_primed(monkeypatch)
    primed_result = None
    for _ in range(8):
        res = _grade(DYNAMIC)
        if seen[-1]:
            primed_result = res
            break
        time.sleep(0.3)  # the next spare becomes ready and is primed while nothing is graded
    assert primed_result is not None, f"no grade went through a primed sandbox: {seen}"
    first, second, _ = _messages(primed_result)
    assert f"torch.nn.functional.softmax {MESSAGE}" in first and f"statistics.fmean {MESSAGE}" in second
    time.sleep(0.3)
    probe = b"import torch\n\ndef probe(info):\n    return float(getattr(torch, 'soft' + 'max')(torch.zeros(2), 0)[0])\n"
    for _ in range(3):  # back to back: whatever the pool holds, the probe pack sees the real library
        n = len(seen)
        res = grade(PACKS / "probe", "probe.py", probe)
        assert seen[n:] == [False]
        assert [json.loads(x[len("PROBE:"):]) for x in res["notes"] if x.startswith("PROBE:")] == [0.5], res["tests"]
    res = _grade(DYNAMIC)  # and the first pack again, primed or not: every stub holds
    assert f"torch.nn.functional.softmax {MESSAGE}" in _messages(res)[0]


def test_a_sandbox_primed_for_other_rules_refuses_to_load(no_leftovers):
    """Defence in depth behind the zygote's choice: a primed sandbox asked to load a submission
    under other forbid rules stops before any of it runs, as a setup error."""
    import time

    from grader.sandbox import pool, protocol

    z = pool.Zygote("cpu", ("torch",), 1)  # one spare: it is always primed for the last pack
    try:
        z.acquire(forbid=CFG).close()
        deadline = time.monotonic() + 30
        sb = None
        while time.monotonic() < deadline:
            sb = z.acquire(forbid=CFG)
            if sb.primed:
                break
            sb.close()
            time.sleep(0.2)
        assert sb is not None and sb.primed
        lim = load_pack(PACK).meta["limits"]
        cfg = {k: lim[k] for k in ("memory_mb", "processes", "cpu_s", "file_mb", "scratch_mb", "open_files", "threads")}
        other = dict(CFG, names=["something_else"])
        tensors: dict = {}
        header = {"op": "load", "module": "sub", "main": "sub.py", "config": cfg, "required": ["run"],
                  "import_module": True, "forbid": other, "import_s": 20,
                  "files": protocol.encode({"sub.py": b"print('ran')\ndef run(x):\n    return 2 * x\n"}, _tensors=tensors)}
        reply, _ = sb.request(header, protocol.pack_tensors(tensors), 20, 1 << 20)
        assert reply["ok"] is False and reply["error"]["type"] == "SandboxSetupError", reply
        assert "prepared for another assignment" in reply["error"]["message"]
        assert b"ran" not in sb.take_output()
        sb.close()
    finally:
        z.shutdown()


def test_the_pool_primes_for_the_pack_asked_for_and_drops_stale_spares(no_leftovers):
    """The zygote's status: spares follow the rules of the latest request; a request without
    rules discards the spares primed for others, and its sandboxes are never primed."""
    from grader.sandbox import pool

    z = pool.Zygote("cpu", ("torch",), 2)
    try:
        z.acquire(forbid=CFG).close()
        assert z.wait_ready(30)
        st = z.status()
        assert st["size"] == 2 and st["ready"] == 2 and st["primed"] >= 1, st  # one pack so far: primed
        sb = z.acquire(forbid=CFG)
        assert sb.primed
        sb.close()
        sb = z.acquire(forbid=None)                                               # another pack, no rules
        assert not sb.primed
        sb.close()
        assert z.wait_ready(30)
        assert z.status()["primed"] == 0, z.status()
        for _ in range(3):
            sb = z.acquire(forbid=None)
            assert not sb.primed
            sb.close()
    finally:
        z.shutdown()


# ------------------------------------------------------------------ validation of assignment.toml

@pytest.mark.parametrize("table, error", [
    ("forbid = 3", r"\[forbid\]: must be a table"),
    ("[forbid]\nmodule = ['x']", r"unknown field\(s\) module"),
    ("[forbid]\nmessage = 'x'", "forbids nothing"),
    ("[forbid]\nmodules = 'torch'", "modules must be a list of module names"),
    ("[forbid]\nmodules = ['torch..nn']", "modules must be a list of module names"),
    ("[forbid]\nnames = ['a.b']", "names must be a list of Python names"),
    ("[forbid]\nattributes = [1]", "attributes must be a list of Python names"),
    ("[forbid]\npatches = [['torch']]", r"patches entry \['torch'\] must be"),
    ("[forbid]\npatches = [['torch', 'nn.*Attention']]", "a wildcard is allowed in its first part only"),
    ("[forbid]\npatches = [['torch', 'x', 'label', 'extra']]", "patches entry"),
    ("[forbid]\nnames = ['x']\nlabels = { x = 1 }", "labels must be a table"),
    ("[forbid]\nnames = ['x']\nmessage = ' '", "message must be a non-empty string"),
    ("[forbid]\nnames = ['x']\nstrings = 'no'", "strings must be true or false"),
    ("[forbid]\nops = ['_scaled_dot_product_attention_math']", "ops must be a list of dispatcher operators"),
    ("[leaderboard]\norder = 'asc'", "metric must be a non-empty string"),
    ("[leaderboard]\nmetric = 'accuracy'\norder = 'up'", r"order must be \"desc\""),
    ("[leaderboard]\nmetric = 'accuracy'\nrank = 1", r"unknown field\(s\) rank"),
    ("leaderboard = 'accuracy'", r"\[leaderboard\] must be a table"),
    ("slug = 'has space'", "slug must be letters, digits"),
    ("slug = 5", "slug must be letters, digits"),
])
def test_validation_names_the_field(table, error):
    import tomllib

    raw = dict(tomllib.loads(table), title="t", points=1)
    with pytest.raises(PackError, match=error):
        validate_meta(raw, "assignment.toml", "p")


def test_validation_accepts_and_normalises():
    meta = validate_meta({"title": "t", "points": 1, "leaderboard": {"metric": " accuracy "},
                          "forbid": {"modules": ["a", "a"], "patches": [["m", "*X.__call__"]]}}, "w", "p")
    assert meta["leaderboard"] == {"metric": "accuracy", "order": "desc"}
    assert meta["forbid"] == {"modules": ["a"], "names": [], "attributes": [], "patches": [["m", "*X.__call__", None]],
                              "ops": [], "labels": {}, "message": forbid.DEFAULT_MESSAGE, "strings": True}
    assert validate_meta({"title": "t", "points": 1}, "w", "p")["forbid"] is None


# ------------------------------------------------------------------ the pack's slug

def test_slug_from_toml_then_caller_then_folder(tmp_path):
    stored = tmp_path / "probe-store" / ("ab" * 32)          # PACK_STORE/<slug>/<hash>/
    shutil.copytree(PACKS / "probe", stored)
    assert load_pack(stored).slug == "probe-store"           # a hash folder takes its parent's name
    plain = tmp_path / "probe-store" / ("ab" * 31)            # not a sha256: the folder's own name
    shutil.copytree(PACKS / "probe", plain)
    assert load_pack(plain).slug == "ab" * 31
    assert load_pack(stored, slug="probe-2026").slug == "probe-2026"
    assert load_pack(stored).slug == "probe-store"           # the cache keeps the two apart
    res = grade(stored, "probe.py", b"def probe(info):\n    return 1\n", slug="probe-2026")
    assert res["engine"]["pack"] == "probe-2026" and res["score"] == 1.0
    toml = stored / "assignment.toml"
    toml.write_text('slug = "probe"\n' + toml.read_text())
    assert load_pack(stored, slug="probe-2026").slug == "probe"   # the toml's slug wins
    assert load_pack(stored).meta["slug"] == "probe"
    odd = tmp_path / "My Pack (v2)"
    shutil.copytree(PACKS / "probe", odd)
    assert load_pack(odd).slug == "My-Pack-v2"


# ------------------------------------------------------------------ an executed notebook (its own kernel)

def _notebook(*cells):
    return nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])).encode()


def test_executed_notebook_kernel_gets_the_stubs_and_its_cells_stay_as_written():
    import base64

    pack = PACKS / "notebook_forbid"
    ok = grade(pack, "hw.ipynb", _notebook("import statistics", "answer = statistics.mean([2.0, 3.0])"))
    assert ok["score"] == 1.0, [t["message"] for t in ok["tests"]]
    assert "review" not in ok                                      # nbclient in the sandbox is not flagged
    executed = json.loads(base64.b64decode(ok["artifacts"][0]["data_b64"]))
    codes = [c for c in executed["cells"] if c["cell_type"] == "code"]
    assert "".join(codes[0]["source"]) == "import statistics"     # the grader's cell is not shown
    assert [c["execution_count"] for c in codes] == [1, 2, 3]
    # a dynamic look-up in the kernel hits the stub; a dynamic import is blocked there too
    res = grade(pack, "hw.ipynb", _notebook("import statistics", "answer = getattr(statistics, 'f' + 'mean')([2.0, 3.0])"))
    assert res["score"] == 0.0
    assert f"ForbiddenAPIError: statistics.fmean {MESSAGE}" in res["tests"][0]["message"]
    res = grade(pack, "hw.ipynb", _notebook("import importlib\nimportlib.import_module('sql' + 'ite3')\nanswer = 2.5"))
    assert res["score"] == 0.0 and "import of sqlite3 halted" in res["tests"][0]["message"]
    # ... and the source scan covers the notebook's cells before anything runs
    res = grade(pack, "hw.ipynb", _notebook("import sqlite3\nanswer = 2.5"))
    assert res["score"] == 0.0 and f"Your code uses sqlite3, {REFUSED}" == res["tests"][0]["message"]
