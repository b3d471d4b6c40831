"""Forbidden APIs: the ``[forbid]`` table of ``assignment.toml``.

An assignment that asks students to write something themselves (attention, a tokenizer, a decoding
loop) forbids the library version. The engine enforces it in two layers, for every case:

1. **Source scan** (trusted process, once per submission, before any sandbox is used): the AST of
   every submitted ``.py`` file (a notebook's code cells included) is searched for imports of a
   forbidden module, forbidden names (attribute ``x.name``, plain ``name``, ``from m import name``,
   and string constants equal to a name or module, as in ``getattr(F, "name")``, unless
   ``strings = false``) and forbidden
   attributes (``x.name`` and ``from m import name`` only). The scan is scope-aware: a forbidden
   name is a *library's*, so a name the submission defines itself (a ``def``/``class`` at any level,
   a method, a parameter, an assignment/``for``/``with``/``except``/comprehension target, an
   attribute it assigns, a name imported from its own files) is the student's own and its uses are
   allowed, unless it is reached through an imported library module (``F.name``,
   ``torch.ops.aten.name``, ``getattr(F, "name")``) or imported from a library. Code under
   ``if __name__ == "__main__":`` is skipped (testing against the library there is fine). A hit
   fails every test with :func:`refusal`'s message; nothing of the submission is run.
2. **Sandbox stubs** (in the sandbox, after the limits are applied and *before* the submission is
   imported): every ``patches`` target is replaced by a function that raises
   ``ForbiddenAPIError`` (a ``RuntimeError``), and every forbidden module is blocked in
   ``sys.modules`` (and by an import hook), so a dynamic look-up the scan cannot see
   (``getattr(F, "scaled_" + "dot_product_attention")``, ``importlib.import_module("token" +
   "izers")``), including one done at import time, fails when it is used. ``ops``
   (``["aten::_scaled_dot_product_attention_math", ...]``) replaces dispatcher operators' kernels
   with the same raising stub (``torch.library``), so every Python path to them raises:
   ``torch.ops.aten.X``, ``.default``, ``torch.ops.aten.__getattr__``, ``torch._C._nn``,
   ``torch._C._VariableFunctions``, and the functional wrappers that call them.

``validate`` (trusted, pack loading) normalises the table; ``scan_files``/``refusal`` run in the
trusted process; ``install`` runs in the sandbox (this module is imported by the zygote before it
forks, like ``grader.sandbox.child``).
"""
from __future__ import annotations

import ast
import fnmatch
import importlib
import re
import sys
import warnings
from pathlib import Path

try:
    from grader.errors import PackError
except ImportError:  # this module's source also runs inside a notebook kernel, where grader is not
    PackError = ValueError  # importable (kernel_cell); validate() is never called there

DEFAULT_MESSAGE = 'see "Not allowed" in the handout'
KEYS = ("modules", "names", "attributes", "patches", "ops", "labels", "message", "strings")

_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_PATTERN = re.compile(r"^[A-Za-z0-9_*?\[\]!]+$")


# --------------------------------------------------------------------------- validation (trusted)

def validate(raw, where: str) -> dict:
    """The normalised ``[forbid]`` table; raises ``PackError`` naming the field."""
    where = f"{where} [forbid]"
    if not isinstance(raw, dict):
        raise PackError(f"{where}: must be a table")
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise PackError(f"{where}: unknown field(s) {', '.join(unknown)} (known: {', '.join(KEYS)})")

    def str_list(key: str, pattern: re.Pattern, what: str) -> list[str]:
        v = raw.get(key, [])
        if not isinstance(v, list) or not all(isinstance(x, str) and pattern.match(x) for x in v):
            raise PackError(f"{where}: {key} must be a list of {what}, got {v!r}")
        return list(dict.fromkeys(v))

    out = {
        "modules": str_list("modules", _DOTTED, "module names (e.g. \"transformers\")"),
        "names": str_list("names", re.compile(r"^[A-Za-z_]\w*$"), "Python names"),
        "attributes": str_list("attributes", re.compile(r"^[A-Za-z_]\w*$"), "Python names"),
    }
    patches = raw.get("patches", [])
    if not isinstance(patches, list):
        raise PackError(f"{where}: patches must be a list of [module, attribute] or [module, attribute, label]")
    out["patches"] = []
    for p in patches:
        ok = (isinstance(p, list) and len(p) in (2, 3) and all(isinstance(x, str) and x for x in p)
              and _DOTTED.match(p[0]))
        if ok:
            parts = p[1].split(".")
            ok = bool(_PATTERN.match(parts[0])) and all(re.match(r"^[A-Za-z_]\w*$", s) for s in parts[1:])
        if not ok:
            raise PackError(f"{where}: patches entry {p!r} must be [module, attribute] or [module, attribute, label] "
                            "(attribute: a dotted path such as \"GenerationMixin.generate\"; a wildcard is allowed "
                            "in its first part only, e.g. \"*Warper.__call__\")")
        out["patches"].append([p[0], p[1], p[2] if len(p) == 3 else None])
    labels = raw.get("labels", {})
    if not isinstance(labels, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        raise PackError(f"{where}: labels must be a table of name = \"what the student is told\"")
    out["labels"] = dict(labels)
    message = raw.get("message", DEFAULT_MESSAGE)
    if not isinstance(message, str) or not message.strip():
        raise PackError(f"{where}: message must be a non-empty string")
    out["message"] = message.strip()
    strings = raw.get("strings", True)
    if not isinstance(strings, bool):
        raise PackError(f"{where}: strings must be true or false")
    out["strings"] = strings
    out["ops"] = str_list("ops", re.compile(r"^[A-Za-z_]\w*::[A-Za-z_]\w*$"),
                          "dispatcher operators (e.g. \"aten::_scaled_dot_product_attention_math\")")
    if not (out["modules"] or out["names"] or out["attributes"] or out["patches"] or out["ops"]):
        raise PackError(f"{where}: forbids nothing (set modules, names, attributes, patches or ops)")
    return out


# --------------------------------------------------------------------------- source scan (trusted)

def _is_main_guard(node) -> bool:
    if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare):
        return False
    t = node.test
    if len(t.ops) != 1 or not isinstance(t.ops[0], ast.Eq) or len(t.comparators) != 1:
        return False
    sides = (t.left, t.comparators[0])
    return (any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides)
            and any(isinstance(s, ast.Constant) and s.value == "__main__" for s in sides))


def _module_hit(name: str, modules: list[str]) -> str | None:
    for m in modules:
        if name == m or name.startswith(m + "."):
            return m
    return None


class _Bindings(ast.NodeVisitor):
    """Every name the submission binds itself, at any level, and every name bound to a module by an
    import of a library (not one of the submission's own files).

    Own names: ``def``/``class`` names (nested functions and methods too), parameters, targets of
    assignments, ``for``, ``with ... as``, ``except ... as``, comprehensions, ``:=`` and ``match``
    captures, attribute targets (``self.name = ...``), and names imported from the submission's own
    files (relative imports, or a module among the submitted files)."""

    def __init__(self, local_modules: frozenset):
        self.local_modules = local_modules
        self.own: set[str] = set()       # names (and attribute names) the submission defines
        self.modules: set[str] = set()   # names bound by ``import lib`` / ``import lib as x`` / ``from lib import sub``
        self.local: set[str] = set()     # names bound to the submission's own modules (``import helper``)
        self.attrs: set[str] = set()     # attribute names it defines: methods, class attributes, ``self.x = ...``

    def _local(self, module: str | None, level: int) -> bool:
        top = (module or "").split(".")[0]
        return bool(level) or top in self.local_modules or not _installed(top)

    def visit_Import(self, node):
        for a in node.names:
            if self._local(a.name, 0):
                self.own.add(a.asname or a.name.split(".")[0])
                self.local.add(a.asname or a.name.split(".")[0])
            else:
                self.modules.add(a.asname or a.name.split(".")[0])

    def visit_ImportFrom(self, node):
        for a in node.names:
            if a.name == "*":
                continue
            bound = a.asname or a.name
            if self._local(node.module, node.level):
                self.own.add(bound)
                self.local.add(bound)
            else:  # ``from torch.nn import functional as F``: a library object; chains rooted at it are the library's
                self.modules.add(bound)

    def _def(self, node):
        self.own.add(node.name)
        self.generic_visit(node)

    visit_FunctionDef = visit_AsyncFunctionDef = _def

    def visit_ClassDef(self, node):
        self.own.add(node.name)
        for stmt in node.body:  # methods and class attributes are reachable as obj.name
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.attrs.add(stmt.name)
            elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                for target in (stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]):
                    for n in ast.walk(target):
                        if isinstance(n, ast.Name):
                            self.attrs.add(n.id)
        self.generic_visit(node)

    def visit_arg(self, node):
        self.own.add(node.arg)

    def visit_Name(self, node):
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            self.own.add(node.id)

    def visit_Attribute(self, node):
        if isinstance(node.ctx, ast.Store):
            self.own.add(node.attr)
            self.attrs.add(node.attr)
        self.generic_visit(node)

    def visit_ExceptHandler(self, node):
        if node.name:
            self.own.add(node.name)
        self.generic_visit(node)

    def visit_MatchAs(self, node):
        if node.name:
            self.own.add(node.name)
        self.generic_visit(node)

    def visit_MatchStar(self, node):
        if node.name:
            self.own.add(node.name)

    def visit_MatchMapping(self, node):
        if node.rest:
            self.own.add(node.rest)
        self.generic_visit(node)


_INSTALLED: dict = {}


def _installed(top: str) -> bool:
    """Whether a top-level module exists in this environment (the sandbox has the same one). A name
    that does not (``from attention import ...`` without attention.py in the upload) is not a
    library's: the import itself will say "No module named ...", not the forbid message."""
    if not top:
        return True
    if top not in _INSTALLED:
        if len(_INSTALLED) > 4096:  # names come from submissions: keep the cache bounded in a long-lived worker
            _INSTALLED.clear()
        try:
            import importlib.util

            _INSTALLED[top] = top in sys.builtin_module_names or importlib.util.find_spec(top) is not None
        except Exception:
            _INSTALLED[top] = True
    return _INSTALLED[top]


def _root(node) -> str | None:
    """``torch`` for ``torch.nn.functional.x`` (or ``torch.randn(3).x``, ``torch.ops["aten"].x``);
    None when the chain does not start at a plain name."""
    while isinstance(node, (ast.Attribute, ast.Call, ast.Subscript)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def scan(source: str, forbid: dict, local_modules=()) -> set[str]:
    """The forbidden modules/names the source uses outside ``if __name__ == "__main__":`` blocks
    (empty for a file that does not parse: the import reports the syntax error).

    A forbidden name is a library's: a name the submission defines itself (see ``_Bindings``) is the
    student's own, and its uses are allowed (``def scaled_dot_product_attention`` and calls of it,
    ``self.generate()`` of their own method), unless it is reached through a library module
    (``F.scaled_dot_product_attention`` where ``F`` is imported) or imported from a library. The
    sandbox stubs stay the real guard for whatever this cannot see. ``local_modules``: the module
    names of the submission's own files (a zip's helpers)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set()
    local = frozenset(local_modules)
    bindings = _Bindings(local)
    try:
        bindings.visit(tree)
    except RecursionError:
        return set()
    return _uses([tree], forbid, bindings, local)


def _uses(roots: list, forbid: dict, bindings: "_Bindings", local: frozenset) -> set[str]:
    """The forbidden modules/names used in ``roots`` (AST nodes), given the whole file's bindings."""
    modules = forbid.get("modules", [])
    names = set(forbid.get("names", []))
    attrs = names | set(forbid.get("attributes", []))
    strings = forbid.get("strings", True)
    own, imported = bindings.own, bindings.modules
    found: set[str] = set()

    def via_module(node) -> bool:
        root = _root(node)
        return root is not None and root in imported

    stack = list(roots)
    while stack:
        node = stack.pop()
        if _is_main_guard(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            for a in node.names:
                hit = _module_hit(a.name, modules)
                if hit:
                    found.add(hit)
        elif isinstance(node, ast.ImportFrom):
            if not node.level and node.module and node.module.split(".")[0] not in local:
                hit = _module_hit(node.module, modules)   # a forbidden module, installed or not
                if hit:
                    found.add(hit)
                for a in node.names:
                    hit = _module_hit(f"{node.module}.{a.name}", modules)
                    if hit:
                        found.add(hit)
                if not bindings._local(node.module, 0):  # a library's name (not a module that does not exist)
                    found.update(a.name for a in node.names if a.name in attrs)
        elif isinstance(node, ast.Attribute) and node.attr in attrs:
            # a library's attribute: reached through an imported module, or a name the
            # submission never defines (``x.log_softmax`` on a tensor)
            # an attribute is the student's only when they define an attribute of that name (a method,
            # a class attribute, ``self.x = ...``) or it is read from their own module: a top-level
            # ``def generate`` does not make ``model.generate`` theirs
            if via_module(node.value) or (node.attr not in bindings.attrs and _root(node.value) not in bindings.local):
                found.add(node.attr)
        elif isinstance(node, ast.Name) and node.id in names and isinstance(node.ctx, ast.Load):
            if node.id not in own:
                found.add(node.id)
        elif isinstance(node, ast.Call) and strings:
            # getattr(F, "scaled_dot_product_attention"): a name looked up on a library module
            if any(via_module(a) for a in node.args):
                for a in node.args:
                    if isinstance(a, ast.Constant) and isinstance(a.value, str) and a.value.strip() in names:
                        found.add(a.value.strip())
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and strings:
            text = node.value.strip()
            if text in names and text not in own:
                found.add(text)
            hit = _module_hit(text, modules) if _DOTTED.match(text) else None
            if hit:
                found.add(hit)
        stack.extend(ast.iter_child_nodes(node))
    return found


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)


def sanity_checks(source: str, forbid: dict, local_modules=()) -> tuple[set[str], list[dict]]:
    """Split the forbidden uses of a file into those that count and the *sanity checks*.

    A sanity check is a top-level statement (a notebook cell's code outside any function: "compare
    with PyTorch's built-in version") that calls the library without defining anything a function
    could use: no ``def``, ``class``, ``lambda`` or ``import`` in it, and no function of the file reads
    a name it binds. A later top-level statement that reads what a check bound (``print((out -
    ref).abs().max())``) belongs to the check. Such statements are allowed and not run by the grader
    (they only print); everything else counts as before: imports of forbidden names or modules, and
    any use inside a function or class, directly or through a name a check bound.

    Returns (the uses that count, the checks as ``{"first", "last", "uses"}`` line ranges)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set(), []
    local = frozenset(local_modules)
    bindings = _Bindings(local)
    try:
        bindings.visit(tree)
    except RecursionError:
        return set(), []
    counted: set[str] = set()
    checks: list[dict] = []
    tainted: dict[str, set] = {}
    spans = [(st.lineno, st.end_lineno or st.lineno) for st in tree.body]
    for idx, stmt in enumerate(tree.body):
        try:
            uses = _uses([stmt], forbid, bindings, local)
            inner = list(ast.walk(stmt))
        except RecursionError:
            return set(), []
        reads = {n.id for n in inner if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        via = set().union(*(tainted[n] for n in reads if n in tainted)) if reads & set(tainted) else set()
        plain = not any(isinstance(n, _SCOPES + (ast.Import, ast.ImportFrom, ast.Global, ast.Nonlocal)) for n in inner)
        first, last = spans[idx]
        alone = all(e < first or b > last for j, (b, e) in enumerate(spans) if j != idx)  # no other statement on its lines
        if plain and alone and (uses or via) and not _is_main_guard(stmt):
            checks.append({"first": first, "last": last, "uses": sorted(uses | via)})
            for n in inner:
                if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)):
                    tainted.setdefault(n.id, set()).update(uses | via)
        else:
            counted |= uses
    if tainted:  # a function that reads what a check bound reaches the library through it: that counts
        for node in ast.walk(tree):
            if isinstance(node, _SCOPES):
                inner = list(ast.walk(node))
                mine = {a.arg for n in inner if isinstance(n, ast.arguments)
                        for a in n.posonlyargs + n.args + n.kwonlyargs + [n.vararg, n.kwarg] if a is not None}
                mine |= {n.id for n in inner if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
                mine -= {g for n in inner if isinstance(n, ast.Global) for g in n.names}
                for n in inner:  # a name the function binds itself (a parameter, a local) is its own
                    if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id in tainted and n.id not in mine:
                        counted |= tainted[n.id]
    return counted, checks


def without_lines(data: bytes, checks: list[dict]) -> bytes:
    """The file with the lines of ``checks`` replaced by ``pass`` (one per line: every other line
    keeps its number, so tracebacks and a notebook's cell numbers stay right)."""
    text = data.decode("utf-8", "replace")
    parts = re.split(r"(\r\n|\r|\n)", text)
    lines, seps = parts[0::2], parts[1::2] + [""]
    drop = set()
    for c in checks:
        drop.update(range(c["first"], c["last"] + 1))
    out = []
    for no, (line, sep) in enumerate(zip(lines, seps), start=1):
        out.append(("pass" if no in drop else line) + sep)
    return "".join(out).encode("utf-8")


def plan_files(files: dict, forbid: dict) -> tuple[list[str], dict[str, list[dict]]]:
    """``scan_files`` with the sanity checks set apart: (what counts, as shown to the student;
    ``{path: checks}`` of the files that have any)."""
    used: set[str] = set()
    found: dict[str, list[dict]] = {}
    py = [str(name) for name in files if str(name).endswith(".py")]
    local = {p[:-3].replace("\\", "/").split("/")[-1] for p in py}
    local |= {p.replace("\\", "/").split("/")[0] for p in py if "/" in p.replace("\\", "/")}
    for name, data in files.items():
        if str(name).endswith(".py"):
            text = data.decode("utf-8", "replace") if isinstance(data, (bytes, bytearray)) else str(data)
            counted, checks = sanity_checks(text, forbid, local)
            used |= counted
            if checks:
                found[str(name)] = checks
    labels = forbid.get("labels", {})
    return sorted({labels.get(u, u) for u in used}), found


def scan_files(files: dict, forbid: dict) -> list[str]:
    """What the submitted ``.py`` files use, as shown to the student (sorted, labels applied)."""
    used: set[str] = set()
    py = [str(name) for name in files if str(name).endswith(".py")]
    local = {p[:-3].replace("\\", "/").split("/")[-1] for p in py}
    local |= {p.replace("\\", "/").split("/")[0] for p in py if "/" in p.replace("\\", "/")}  # packages
    for name, data in files.items():
        if str(name).endswith(".py"):
            text = data.decode("utf-8", "replace") if isinstance(data, (bytes, bytearray)) else str(data)
            used |= scan(text, forbid, local)
    labels = forbid.get("labels", {})
    return sorted({labels.get(u, u) for u in used})


def refusal(used: list[str], forbid: dict) -> str:
    """The student-facing message for a submission whose source uses forbidden APIs."""
    return (f"Your code uses {', '.join(used)}, which this assignment does not allow "
            f"({forbid.get('message') or DEFAULT_MESSAGE}). Every test fails until it is removed.")


# --------------------------------------------------------------------------- sandbox stubs (untrusted side)

class ForbiddenAPIError(RuntimeError):
    """Raised by a forbidden library entry point inside the sandbox."""


def _stub(label: str, message: str):
    def forbidden(*args, **kwargs):
        raise ForbiddenAPIError(f"{label} is not allowed in this assignment ({message})")

    forbidden.__name__ = forbidden.__qualname__ = label.rsplit(".", 1)[-1]
    return forbidden


class _Blocker:
    """A meta-path finder refusing the forbidden modules (a second lock behind the sys.modules entries)."""

    def __init__(self, modules: list[str], message: str):
        self.modules, self.message = list(modules), message

    def find_spec(self, fullname, path=None, target=None):
        hit = _module_hit(fullname, self.modules)
        if hit:
            raise ModuleNotFoundError(f"import of {fullname} is not allowed in this assignment ({self.message})",
                                      name=fullname)
        return None


def _resolve(dotted: str):
    """A module by its dotted name, or an object reachable from one (``torch.ops.aten``)."""
    try:
        return importlib.import_module(dotted)
    except ImportError:
        parent, _, attr = dotted.rpartition(".")
        if not parent:
            raise
        return getattr(_resolve(parent), attr)


def _read_source() -> str | None:
    """This file's text, read on import while the grader's files are visible (the zygote imports
    this module before it forks); None when run from that text in a kernel."""
    if __name__ == KERNEL_NAME:
        return None
    try:
        return Path(__file__).read_text(encoding="utf-8")
    except (OSError, NameError):
        return None


KERNEL_NAME = "_grader_forbid"
_SOURCE = _read_source()


def kernel_cell(forbid: dict) -> str | None:
    """Code that installs the same stubs in a notebook kernel (a separate process that cannot import
    the grader): this module's source, run in a private namespace, then ``install(forbid)``."""
    if _SOURCE is None:
        return None
    return (f"# installed by the grader: forbidden APIs\n"
            f"exec(compile({_SOURCE!r}, '<grader forbid>', 'exec'), __grader_ns := {{'__name__': {KERNEL_NAME!r}}})\n"
            f"__grader_ns['install']({forbid!r})\n"
            f"del __grader_ns\n")


# dispatch keys whose kernels ``ops`` replaces (only those the operator has a kernel for): the backend
# and composite kernels that do the work. Autograd kernels redispatch to them, so they need no stub
# (fewer registrations: each costs ~0.2 ms in a freshly forked sandbox, on the warm path).
_OP_KEYS = {"CPU", "CUDA", "MPS", "XPU", "CompositeImplicitAutograd", "CompositeExplicitAutograd",
            "CompositeExplicitAutogradNonFunctional", "NestedTensorCPU", "NestedTensorCUDA"}


def _block_ops(ops: list[str], message: str) -> list[str]:
    """Replace the kernels of dispatcher operators (``aten::_scaled_dot_product_attention_math``) with
    one that raises, for every dispatch key they have a kernel for. Every Python path to the operator
    goes through the dispatcher (``torch.ops.aten.X``, ``.default``, ``torch.ops.aten.__getattr__``,
    ``torch._C._nn``, ``torch._C._VariableFunctions``, the functional wrapper that calls it), so all of
    them raise. Skipped where torch is not importable or the operator does not exist."""
    if not ops:
        return []
    try:
        import torch  # heavy, and absent where no pack forbids ops: imported only when ops are stubbed
    except Exception:
        return []
    done: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "overriding a previously registered kernel"
        for qualified in ops:
            ns, name = qualified.split("::", 1)
            try:
                dump = torch._C._dispatch_dump(qualified)
            except Exception:
                continue
            keys = set(re.findall(r"^(\w+)(?:\[alias\])?: registered", dump, re.M)) & _OP_KEYS
            if not keys:
                continue
            label = f"torch.ops.{ns}.{name}"
            try:
                # the dispatcher's own registration object (not torch.library.Library: that one is a
                # Python object with _destroy(), findable with gc). It is not tracked by the garbage
                # collector, and its only reference is leaked below, so nothing in the sandbox can
                # reach it to undo the registration (grader/README.md, "Forbidden APIs")
                lib = torch._C._dispatch_library("IMPL", ns, "")
                stub = _stub(label, message)
                for key in sorted(keys):
                    lib.impl(name, key, stub, False)
            except Exception:
                continue
            _keep_forever(lib)
            del lib
            done.append(label)
            _stub_decompositions(torch, ns, name, stub)
    return done


def _keep_forever(obj) -> None:
    """Give ``obj`` one reference that nothing owns (it lives as long as the process), so that no
    Python container holds it. Runs before the submission, before the audit hook (``guard``)."""
    import ctypes

    ctypes.pythonapi.Py_IncRef(ctypes.py_object(obj))


def _decomp_index() -> dict:
    """``{"aten::name": [(table, op), ...]}`` over torch._decomp's decomposition tables (built once:
    at import in the zygote, before it forks, so a sandbox does not pay for it)."""
    global _DECOMP_INDEX
    if _DECOMP_INDEX is None:
        index: dict = {}
        tables = getattr(sys.modules.get("torch._decomp"), "global_decomposition_table", None)
        if isinstance(tables, dict):
            for table in tables.values():
                if isinstance(table, dict):
                    for op in list(table):
                        try:
                            index.setdefault(op.name(), []).append((table, op))
                        except Exception:
                            continue
        _DECOMP_INDEX = index
    return _DECOMP_INDEX


_DECOMP_INDEX = None


def _stub_decompositions(torch, ns: str, name: str, stub) -> None:
    """torch._decomp keeps Python decompositions of some operators (the CPU flash attention, as
    plain aten maths) in dicts keyed by the operator: ``decomposition_table[op.default](q, k, v)``
    would compute the forbidden operator without the dispatcher. Their entries get the stub too."""
    for table, op in _decomp_index().get(f"{ns}::{name}", []):
        table[op] = stub


def key(forbid: dict) -> str:
    """A canonical text of a forbid config: two packs with the same rules share primed sandboxes."""
    import json

    return json.dumps(forbid, sort_keys=True, separators=(",", ":"))


def install(forbid: dict) -> list[str]:
    """Replace the ``patches`` targets with raising stubs and block the forbidden modules, in this
    process. Returns the labels of the targets replaced (a target whose module is not installed is
    skipped: it cannot be used either)."""
    message = forbid.get("message") or DEFAULT_MESSAGE
    done: list[str] = []
    for mod_name, path, label in forbid.get("patches", []):
        try:
            module = _resolve(mod_name)
        except Exception:
            continue
        first, *rest = path.split(".")
        if any(ch in first for ch in "*?["):
            matches = sorted(n for n in dir(module) if fnmatch.fnmatchcase(n, first))
        else:
            matches = [first]
        for match in matches:
            parts = [match] + rest
            try:
                owner = module
                for part in parts[:-1]:
                    owner = getattr(owner, part)
                if match != first and rest and not isinstance(getattr(module, match), type):
                    continue  # a wildcard followed by an attribute path patches classes only
                shown = label.replace("{name}", match) if label else f"{mod_name}.{'.'.join(parts)}"
                setattr(owner, parts[-1], _stub(shown, message))
                done.append(shown)
            except Exception:
                continue
    done += _block_ops(forbid.get("ops", []), message)
    modules = forbid.get("modules", [])
    if modules:
        for key in [k for k in list(sys.modules) if _module_hit(k, modules)]:
            sys.modules[key] = None
        for m in modules:
            sys.modules[m] = None
        sys.meta_path.insert(0, _Blocker(modules, message))
    return done


# --------------------------------------------------------------------------- the guard's guard (untrusted side)

# CPython audit events (PEP 578). An audit hook cannot be removed or replaced from Python.
_GC_EVENTS = ("gc.get_objects", "gc.get_referrers", "gc.get_referents")
_FLAG_PREFIXES = ("ctypes.",)


def guard(forbid: dict, review_fd: int | None) -> None:
    """Make the stubs hold against what Python in the sandbox can do, for the rest of this process:
    an audit hook (which cannot be removed) refuses the garbage collector's object walks (the way
    to find objects nothing else references), refuses imports of the forbidden modules however the
    import hook and ``sys.modules`` were changed, and reports every use of ``ctypes`` (raw memory:
    what Python cannot prevent) and every refused walk on ``review_fd``, a pipe read by the trusted
    process, which flags the grade for staff review. Installed by the sandbox after its own setup
    (which uses ctypes) and before the submission is imported.

    The hook never calls anything the submission can replace (the functions it uses are captured
    here) and holds nothing that could undo the stubs: its frame, which a refused call's traceback
    shows, has only the descriptor and those functions."""
    modules = tuple(forbid.get("modules", []))
    message = forbid.get("message") or DEFAULT_MESSAGE
    # everything the hook uses is bound here: a module global or builtin could be replaced
    write, startswith, isstr, to_str, str_type = _os_write(), str.startswith, isinstance, str.__str__, str
    gc_events, flag_prefixes, refused, not_found = _GC_EVENTS, _FLAG_PREFIXES, RuntimeError, ModuleNotFoundError

    def report(line: str) -> None:
        if review_fd is None:
            return
        try:
            write(review_fd, line.encode("ascii", "replace")[:200] + b"\n")
        except OSError:  # full (then the flags were written already) or closed (the trusted side sees EOF)
            pass

    def hook(event, args):
        if event in gc_events:
            report(f"refused {event}()")
            raise refused(f"{event}() is not available while grading this assignment")
        if startswith(event, flag_prefixes):
            report(f"used {event}")
            return
        if event == "import" and modules and args and isstr(args[0], str_type):
            name = to_str(args[0])
            for m in modules:
                if name == m or startswith(name, m + "."):
                    report(f"tried to import {m}")
                    raise not_found(f"import of {name} is not allowed in this assignment ({message})")

    sys.addaudithook(hook)


def _os_write():
    import os

    return os.write


# the zygote imports this module after torch: index torch._decomp once, before it forks
if "torch._decomp" in sys.modules and __name__ != KERNEL_NAME:
    try:
        _decomp_index()
    except Exception:
        _DECOMP_INDEX = None
