"""Helpers for drivers that read an executed notebook (the dict returned by execute_notebook)."""
from __future__ import annotations


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def code_cells(nb: dict) -> list[dict]:
    return [c for c in nb.get("cells", []) if isinstance(c, dict) and c.get("cell_type") == "code"]


def cell_text(nb: dict, index: int) -> str:
    """All text output of code cell ``index`` (0-based among code cells; negative counts from the end)."""
    cell = code_cells(nb)[index]
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(_text(out.get("text")))
        elif out.get("output_type") in ("execute_result", "display_data"):
            parts.append(_text(out.get("data", {}).get("text/plain")))
    return "".join(parts)


def stream_text(nb: dict, name: str = "stdout") -> str:
    return "".join(_text(o.get("text")) for c in code_cells(nb) for o in c.get("outputs", [])
                   if o.get("output_type") == "stream" and o.get("name") == name)


def errors(nb: dict) -> list[dict]:
    """[{cell, ename, evalue}] for every code cell that raised."""
    found = []
    for i, c in enumerate(code_cells(nb)):
        for o in c.get("outputs", []):
            if o.get("output_type") == "error":
                found.append({"cell": i, "ename": str(o.get("ename")), "evalue": str(o.get("evalue"))[:500]})
    return found


def images(nb: dict, mime: str = "image/png") -> list[str]:
    """Base64 images (e.g. plots) found in the outputs."""
    return [_text(o["data"][mime]) for c in code_cells(nb) for o in c.get("outputs", [])
            if isinstance(o.get("data"), dict) and mime in o["data"]]


# =========================================================================== notebook -> module (trusted)
#
# A notebook graded by import (``import_module = true``) becomes one Python module: each code cell's
# lines, in notebook order, under a ``# %% cell N`` header (N counts every cell from the top, Markdown
# included, as the student sees them). Notebook-only syntax is rewritten line for line, so every line
# of the module maps back to "cell N, line M" (``LineMap``), which is how errors are reported:
#
# * cell magics: ``%%time``, ``%%prun`` and ``%%capture [name]`` run their body (``name`` is bound to
#   an empty capture); ``%%writefile [-a] path`` writes its body into the sandbox's scratch folder
#   when the cell runs, as Jupyter does, so a later ``import helper`` works (the file's text is also
#   given to the source scan of ``[forbid]``); ``%%timeit`` (a benchmark) and every other cell magic
#   (``%%bash``, ``%%sh``, ``%%html``, ``%%javascript``, ``%%latex``, ``%%markdown``, ...) never run;
# * line magics: ``%time stmt`` runs ``stmt``; ``x = %time expr`` runs ``x = expr``; ``%env NAME=value``
#   sets the variable; ``%run script.py`` runs the script and keeps its names; ``x = !cmd`` and
#   ``x = %sx cmd`` bind an empty list (shell commands do not run); other magics, ``!cmd`` shell
#   lines, ``obj?``/``??obj`` help and automagic shell lines (``pip install x``) are dropped;
# * a cell that is plain Python is never rewritten (a continuation line ``% b`` stays as it is).
#
# Each rewrite is listed in one note. Runtime helpers (``__grader_nb__``, ``get_ipython()``,
# ``display()``, ``google.colab``) are installed in the sandbox by grader/intake/nbshim.py.

import ast as _ast
import re as _re
import shlex as _shlex
from dataclasses import dataclass as _dataclass, field as _field


@_dataclass
class LineMap:
    """Generated module line -> (cell number, line in that cell), and the cells' original lines."""
    lines: list = _field(default_factory=list)          # index: module line - 1 -> (cell, line) or None
    cells: dict = _field(default_factory=dict)          # cell number -> list of its source lines
    filename: str = ""                                   # the module's file name in the sandbox

    def locate(self, lineno: int):
        if isinstance(lineno, int) and 1 <= lineno <= len(self.lines):
            return self.lines[lineno - 1]
        return None

    def source_line(self, cell: int, line: int) -> str:
        src = self.cells.get(cell, [])
        return src[line - 1] if 1 <= line <= len(src) else ""

    def first_line(self, cell: int) -> str:
        for ln in self.cells.get(cell, []):
            if ln.strip():
                return _clean(ln.strip(), 60)
        return ""

    def where(self, cell: int) -> str:
        first = self.first_line(cell)
        return f"cell {cell} (`{first}`)" if first else f"cell {cell}"


@_dataclass
class Converted:
    source: str
    notes: list
    linemap: LineMap
    written: dict                                       # %%writefile'd .py files: path -> final text


_SHELL_ASSIGN = _re.compile(r"^(\s*)([A-Za-z_][\w.]*(?:\s*,\s*[A-Za-z_][\w.]*)*)\s*=\s*(?:!|%%?(?:sx|system)\b)")
_TIME_ASSIGN = _re.compile(r"^(\s*)([A-Za-z_][\w.]*(?:\s*,\s*[A-Za-z_][\w.]*)*)\s*=\s*%time\s+(\S.*)$")
_TIMEIT_ASSIGN = _re.compile(r"^(\s*)([A-Za-z_][\w.]*)\s*=\s*%timeit\b")
_TIME_LINE = _re.compile(r"^(\s*)%time\s+(\S.*)$")
_RUN = _re.compile(r"^(\s*)%run\s+((?:-[a-z]\s+)*)(\S+)\s*(.*)$")
_ENV_SET = _re.compile(r"^(\s*)%env\s+([A-Za-z_]\w*)(?:\s*=\s*|\s+)(\S.*?)\s*$")
_MAGIC_LINE = _re.compile(r"^(\s*)(%%?\w|!|\?|\w[\w.]*\?\??\s*$)")
_AUTOMAGIC = _re.compile(r"^(\s*)(pip|pip3|conda|mamba|cd|ls|pwd|cat|mkdir|rm|cp|mv|nvidia-smi|wget|curl|git|unzip|"
                         r"apt|apt-get|sudo|huggingface-cli|python|python3)(\s|$)")
_RUN_BODY = {"time", "prun", "capture"}
_WRITE = {"writefile", "file"}


def _parses(text: str) -> bool:
    try:
        _ast.parse(text)
        return True
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return False


def _short(text: str, n: int = 60) -> str:
    text = text.strip()
    return text if len(text) <= n else text[: n - 3] + "..."


def _cell_magic(first: str):
    """(name, args) of a cell magic line ``%%name args``."""
    rest = first.strip()[2:]
    name, _, args = rest.partition(" ")
    return name.strip(), args.strip()


def _writefile_args(args: str):
    """(path, append) of ``%%writefile [-a|--append] path``; None when it cannot be read."""
    try:
        words = _shlex.split(args)
    except ValueError:
        return None
    append = any(w in ("-a", "--append") for w in words)
    paths = [w for w in words if not w.startswith("-")]
    return (paths[0], append) if len(paths) == 1 else None


def _safe_rel_py(path: str) -> bool:
    parts = path.split("/")
    return (path.endswith(".py") and not path.startswith("/") and all(
        p and p not in (".", "..") and _re.match(r"^[A-Za-z0-9_.\-]+$", p) for p in parts))


def to_module(nb, import_module: bool = True, filename: str = "") -> Converted:
    """The module the sandbox imports for a validated nbformat-4 notebook (see the comment above)."""
    out: list[str] = []
    lmap = LineMap(filename=filename)
    changed: list[str] = []
    written: dict[str, str] = {}

    def emit(text: str, where) -> None:
        out.append(text)
        lmap.lines.append(where)

    code_cells = 0
    for index, cell in enumerate(nb.cells, start=1):
        if cell.cell_type != "code":
            continue
        code_cells += 1
        src = cell.source if isinstance(cell.source, str) else "".join(cell.source)
        lines = src.splitlines()
        lmap.cells[index] = lines
        emit(f"# %% cell {index}", None)
        first = lines[0].strip() if lines else ""
        body_from = 0
        if first.startswith("%%"):
            name, args = _cell_magic(first)
            if name in _RUN_BODY:
                var = args.split()[-1] if name == "capture" and args.split() and args.split()[-1].isidentifier() else None
                emit(f"{var} = __grader_nb__.CapturedIO()" if var else f"pass  # %%{name}: the code below runs without it",
                     (index, 1))
                changed.append(f"cell {index}: `{_short(first)}` (its code ran without it)")
                body_from = 1
            elif name in _WRITE and _writefile_args(args):
                path, append = _writefile_args(args)
                body = "\n".join(lines[1:]) + "\n"
                emit(f"__grader_nb__.writefile({path!r}, {body!r}, append={append!r})", (index, 1))
                if _safe_rel_py(path):
                    written[path] = (written.get(path, "") if append else "") + body
                continue
            else:
                changed.append(f"cell {index}: the whole `{_short(first)}` cell")
                continue
        body = lines[body_from:]
        plain = _parses("\n".join(body))
        for offset, ln in enumerate(body):
            where = (index, body_from + offset + 1)
            if plain:
                emit(ln, where)
                continue
            m = _SHELL_ASSIGN.match(ln)
            if m:
                emit(f"{m.group(1)}{m.group(2)} = __grader_nb__.shell()", where)
                changed.append(f"cell {index}: `{_short(ln)}` ({_short(m.group(2), 30)} is an empty list)")
                continue
            m = _TIME_ASSIGN.match(ln)
            if m:
                emit(f"{m.group(1)}{m.group(2)} = {m.group(3)}", where)
                changed.append(f"cell {index}: `{_short(ln)}` (ran without %time)")
                continue
            m = _TIMEIT_ASSIGN.match(ln)
            if m:
                emit(f"{m.group(1)}{m.group(2)} = None  # dropped: %timeit", where)
                changed.append(f"cell {index}: `{_short(ln)}`")
                continue
            m = _RUN.match(ln)
            if m:  # %run helper.py: runs it as __main__ and keeps its names, as in IPython
                emit(f"{m.group(1)}globals().update(__grader_nb__.run_path({m.group(3)!r}))", where)
                continue
            m = _ENV_SET.match(ln)
            if m:  # %env NAME=value sets the variable, as in IPython
                emit(f"{m.group(1)}__import__('os').environ[{m.group(2)!r}] = {m.group(3)!r}", where)
                continue
            m = _TIME_LINE.match(ln)
            if m:
                emit(f"{m.group(1)}{m.group(2)}", where)
                changed.append(f"cell {index}: `{_short(ln)}` (ran without %time)")
                continue
            m = _MAGIC_LINE.match(ln) or (_AUTOMAGIC.match(ln) if not _parses(ln.strip()) else None)
            if m:
                emit(f"{m.group(1)}pass  # dropped: IPython magic/shell line", where)
                changed.append(f"cell {index}: `{_short(ln)}`")
                continue
            emit(ln, where)
    notes = []
    if import_module and changed:
        listed = "; ".join(changed[:10]) + (f"; and {len(changed) - 10} more" if len(changed) > 10 else "")
        notes.append(f"{len(changed)} IPython magic/shell line(s) were dropped (they do not run in the grader): {listed}")
    if not code_cells:
        notes.append("The notebook has no code cells.")
    return Converted("\n".join(out) + "\n", notes, lmap, written)


# =========================================================================== errors -> cells (trusted)

_TB_FILE = _re.compile(r'^(\s*)File "([^"\n]*)", line (\d+)(.*)$')
_AT_FILE = r"\((?P<file>[^()\n]*), line (?P<line>\d+)\)"

_GPU = _re.compile(r"Torch not compiled with CUDA|Found no NVIDIA driver|No CUDA GPUs are available|"
                   r"CUDA driver initialization failed|deserialize object on a CUDA device|"
                   r"cuda.*is_available\(\) is False|no CUDA-capable device|CUDA is not available|"
                   r"Cannot access accelerator device|NVIDIA driver on your system is too old|"
                   r"Cannot initialize CUDA without|not compiled with (?:CUDA|GPU) support", _re.I)
_NET = _re.compile(r"huggingface\.co|hf\.co|outgoing traffic has been disabled|offline mode|"
                   r"not a valid model identifier|Temporary failure in name resolution|Name or service not known|"
                   r"nodename nor servname|Network is unreachable|Failed to establish a new connection|"
                   r"Max retries exceeded|getaddrinfo failed|urlopen error|No address associated with hostname|"
                   r"Connection refused", _re.I)
_NET_TYPES = {"URLError", "HTTPError", "ConnectionError", "gaierror", "OfflineModeIsEnabled",
              "LocalEntryNotFoundError", "RepositoryNotFoundError", "HFValidationError", "ConnectTimeout",
              "ConnectionRefusedError", "MaxRetryError", "NewConnectionError"}
_MISSING_MODULE = _re.compile(r"^No module named '([A-Za-z_][\w.]{0,100})'$")
_MISSING_PATH = _re.compile(r"No such file or directory: '([^'\n]{1,300})'|No such file or directory: \"([^\"\n]{1,300})\"|"
                            r"(/content/[^\s'\"]{0,200})|(/gdrive/[^\s'\"]{0,200})")

GUARD_ADVICE = ('Code that loads your own data, downloads models or trains belongs under '
                '`if __name__ == "__main__":` (it still runs in Colab and Jupyter, and the grader skips it) '
                "or inside a function.")


def _clean(text: str, n: int) -> str:
    try:
        from grader.text import clean
    except ImportError:  # pragma: no cover - grader.text is part of the engine
        def clean(v):
            return "".join(ch for ch in str(v) if ch.isprintable() or ch in "\n\t")
    text = clean(text)
    return text if len(text) <= n else text[: n - 3] + "..."


_TB_CELL = _re.compile(r"^\s*cell (\d+), line (\d+)(?:, in .*)?$")
_AT_CELL = _re.compile(r"\(cell (\d+), line (\d+)\)")


def _frames(err: dict, linemap: LineMap | None, main: str) -> list:
    """Where each traceback frame in the student's main file is, outermost first: (cell, line) for
    a notebook (from a mapped or an unmapped traceback), (None, line) for a .py file."""
    found = []

    def add(lineno: int) -> None:
        if linemap is None:
            found.append((None, lineno))
        elif linemap.locate(lineno):
            found.append(linemap.locate(lineno))

    for ln in str(err.get("traceback") or "").split("\n"):
        m = _TB_FILE.match(ln)
        if m and m.group(2) == main:
            add(int(m.group(3)))
            continue
        m = _TB_CELL.match(ln)
        if m and linemap is not None:
            found.append((int(m.group(1)), int(m.group(2))))
    if not found:  # a SyntaxError: "(attention.py, line 57)" or, mapped, "(cell 4, line 2)" in the message
        msg = str(err.get("message") or "")
        for m in _re.finditer(_AT_FILE, msg):
            if m.group("file") == main:
                add(int(m.group("line")))
        if linemap is not None:
            found += [(int(m.group(1)), int(m.group(2))) for m in _AT_CELL.finditer(msg)]
    return found


def map_error(err: dict, linemap: LineMap | None, main: str) -> dict:
    """The error with every "File <module>, line L" of its traceback and message rewritten as
    "cell N, line M" (the code line shown is the student's own line, not the converted one)."""
    if linemap is None or not isinstance(err, dict):
        return err
    err = dict(err)
    tb = str(err.get("traceback") or "")
    if tb:
        src = tb.split("\n")
        res: list[str] = []
        i = 0
        while i < len(src):
            m = _TB_FILE.match(src[i])
            loc = linemap.locate(int(m.group(3))) if m and m.group(2) == main else None
            if loc:
                ind = m.group(1)
                res.append(f"{ind}cell {loc[0]}, line {loc[1]}{m.group(4)}")
                nxt = src[i + 1] if i + 1 < len(src) else None
                if nxt is not None and nxt.startswith(ind + " ") and not _TB_FILE.match(nxt):
                    res.append(f"{ind}  {_clean(linemap.source_line(*loc).strip(), 200)}")
                    i += 1
                i += 1
                continue
            res.append(src[i])
            i += 1
        err["traceback"] = "\n".join(res)

    def at(m):
        loc = linemap.locate(int(m.group("line"))) if m.group("file") == main else None
        return f"(cell {loc[0]}, line {loc[1]})" if loc else m.group(0)

    err["message"] = _re.sub(_AT_FILE, at, str(err.get("message") or ""))
    return err


def _kind_of(err: dict) -> str | None:
    tname, msg = str(err.get("type") or ""), str(err.get("message") or "")
    text = f"{tname}: {msg}"
    if tname in _NET_TYPES or _NET.search(text):
        return "network"
    if _GPU.search(text):
        return "gpu"
    if tname == "FileNotFoundError" or "No such file or directory" in msg:
        return "file"
    if tname == "EOFError" and "reading a line" in msg:
        return "input"
    if tname == "ModuleNotFoundError" and _MISSING_MODULE.search(msg):
        return "module"
    return None


def _place(frames: list, linemap: LineMap | None, innermost: bool) -> tuple[str, str]:
    """("cell 4 (`x = f()`)", ", line 2") for a notebook, ("line 12 of your file", "") for a .py file."""
    if not frames:
        return "", ""
    cell, line = frames[-1 if innermost else 0]
    if linemap is None or cell is None:
        return f"line {line} of your file", ""
    return linemap.where(cell), f", line {line}"


def advice(err: dict, linemap: LineMap | None, main: str) -> str | None:
    """One sentence for the classes of errors a notebook written for Colab runs into in the grader
    (GPU code, missing data files, downloads, input()), naming the cell or line; None for other errors."""
    kind = _kind_of(err)
    if kind is None:
        return None
    where, line = _place(_frames(err, linemap, main), linemap, innermost=True)
    subject = f"{where[0].upper()}{where[1:]}{line}" if where else "Your code"
    what = f"{_clean(err.get('type') or 'Error', 80)}: {_clean(str(err.get('message') or ''), 200)}"
    if kind == "gpu":
        return (f"{subject} uses the GPU (cuda), but the grader runs your code on a CPU ({what}). Guard it so it "
                'runs on either: `device = "cuda" if torch.cuda.is_available() else "cpu"`, then move models and '
                "tensors with `.to(device)` instead of `.cuda()`, and load checkpoints with "
                "`torch.load(path, map_location=device)`.")
    if kind == "network":
        return (f"{subject} tried to download something ({what}), but the grader has no internet access: "
                "Hugging Face models by name (from_pretrained), urllib, requests and wget cannot download while "
                f"grading. {GUARD_ADVICE}")
    if kind == "module":
        name = _MISSING_MODULE.search(str(err.get("message") or "")).group(1)
        top = name.split(".")[0]
        if linemap is None:
            return (f"{subject} imports {name} ({what}), which is not installed in the grader: only the course's "
                    f"packages are available. If it is your own module, submit a .zip with {top}.py.")
        return (f"{subject} imports {name} ({what}), which is not installed in the grader: `!pip install` lines do "
                "not run while grading, only the course's packages are available. If it is your own module, write "
                f"it in the notebook with a `%%writefile {top}.py` cell above this one, or submit a .zip with {top}.py.")
    if kind == "input":
        return (f"{subject} waits for keyboard input (input(): {what}), which nobody can type while grading: set "
                f"the value in the code instead. {GUARD_ADVICE}")
    m = _MISSING_PATH.search(str(err.get("message") or ""))
    path = next((g for g in m.groups() if g), "") if m else ""
    colab = path.startswith(("/content", "/gdrive")) or "MyDrive" in path or "drive/" in path
    shown = f" {_clean(path, 120)}" if path else " a file"
    why = ("it is in your Google Drive or your Colab session, which the grader cannot reach" if colab
           else "it is not part of your submission")
    return f"{subject} uses{shown}, which does not exist in the grader ({what}): {why}. {GUARD_ADVICE}"


def explain_load(err: dict, linemap: LineMap | None, main: str, budget: float) -> str | None:
    """The message for a submission whose import failed: for a notebook it always names the cell
    (its number and first line); for a .py file only timeouts, GPU code, missing data and downloads
    get a message here (None: the caller formats the error as usual)."""
    err = map_error(err, linemap, main)
    frames = _frames(err, linemap, main)
    tname = _clean(str(err.get("type") or "Exception"), 100)
    msg = str(err.get("message") or "")
    tb = str(err.get("traceback") or "")
    what = "notebook" if linemap is not None else "file"
    if str(err.get("kind") or "").endswith("timeout"):
        where, _ = _place(frames, linemap, innermost=False)
        inner, line = _place(frames, linemap, innermost=True)
        running = f"{where} was still running" if where else "it was still running"
        if where and inner == where and line:
            running += f" (at{line[1:]})"
        elif where and inner and inner != where:
            running += f" (in {inner}{line})"
        text = (f"Importing your {what} did not finish within {budget:.0f} s: {running}. Everything at the top "
                f"level of your {what} runs when the grader imports it. {GUARD_ADVICE}")
        return text + ("\n" + tb if tb else "")
    extra = advice(err, linemap, main)
    if extra:
        return extra + ("\n" + tb if tb else "")
    if linemap is None:
        return None
    where, line = _place(frames, linemap, innermost=False)
    if "SyntaxError" in tname or "IndentationError" in tname or "TabError" in tname:
        inner, line = _place(frames, linemap, innermost=True)
        bare = _re.sub(r"\s*\(cell \d+, line \d+\)\s*$", "", msg)
        return (f"Your notebook has a syntax error in {inner or 'a cell'}{line}: {tname}: {_clean(bare, 500)}"
                + ("\n" + tb if tb else ""))
    if str(err.get("kind") or "").endswith("exit"):
        return (f"Importing your notebook stopped in {where or 'a cell'}{line}: {_clean(msg, 300)}; "
                "a notebook must not exit." + ("\n" + tb if tb else ""))
    later = _defined_later(msg, frames, linemap) if tname in ("NameError", "ImportError") else None
    return (f"Importing your notebook failed in {where or 'a cell'}{line}: {tname}: {_clean(msg, 1500)}"
            + (f". {later}" if later else "") + ("\n" + tb if tb else ""))


def _defined_later(msg: str, frames: list, linemap: LineMap) -> str | None:
    """For "name 'x' is not defined": the later cell that defines x (the grader runs the cells top
    to bottom once; in Jupyter they may have been run in another order)."""
    m = _re.search(r"name '([A-Za-z_]\w*)' is not defined|cannot import name '([A-Za-z_]\w*)'", msg)
    if not m or not frames:
        return None
    name, failing = m.group(1) or m.group(2), frames[0][0]
    for cell in sorted(c for c in linemap.cells if c > failing):
        try:
            tree = _ast.parse("\n".join(linemap.cells[cell]))
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        for node in tree.body:
            names = []
            if isinstance(node, (_ast.FunctionDef, _ast.AsyncFunctionDef, _ast.ClassDef)):
                names = [node.name]
            elif isinstance(node, (_ast.Assign, _ast.AnnAssign)):
                targets = node.targets if isinstance(node, _ast.Assign) else [node.target]
                names = [t.id for t in targets if isinstance(t, _ast.Name)]
            elif isinstance(node, (_ast.Import, _ast.ImportFrom)):
                names = [(a.asname or a.name).split(".")[0] for a in node.names]
            if name in names:
                return (f"{name} is defined further down, in {linemap.where(cell)}: the grader runs the cells "
                        "once, from top to bottom, so move that cell above this one (in Jupyter, check with "
                        "Restart & Run All)")
    return None


def missing_hint(missing: list, linemap: LineMap | None) -> str | None:
    """For a notebook that does not define a required name at the top level: the cell where it *is*
    defined, and why the import did not see it (a cell magic that does not run, a
    ``if __name__ == "__main__":`` block, inside a function or class)."""
    if linemap is None:
        return None
    wanted = {m for m in missing if isinstance(m, str)}
    for cell in sorted(linemap.cells):
        lines = linemap.cells[cell]
        magic = lines[0].strip() if lines and lines[0].strip().startswith("%%") else ""
        body = "\n".join(lines[1:] if magic else lines)
        try:
            tree = _ast.parse(body)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        stack = [(node, "top") for node in tree.body]
        while stack:
            node, where = stack.pop()
            name = getattr(node, "name", None) if isinstance(
                node, (_ast.FunctionDef, _ast.AsyncFunctionDef, _ast.ClassDef)) else None
            if name is None and isinstance(node, _ast.Assign):
                name = next((t.id for t in node.targets if isinstance(t, _ast.Name) and t.id in wanted), None)
            if name in wanted:
                cell_name = linemap.where(cell)
                kind, args = _cell_magic(magic) if magic else ("", "")
                if where == "top" and kind in _WRITE and _writefile_args(args):
                    module = _writefile_args(args)[0].rsplit("/", 1)[-1].removesuffix(".py")
                    return (f"{name} is defined in {cell_name}, which writes a file and does not run its code: add "
                            f"`from {_short(module, 40)} import {name}` in a cell below it.")
                if where == "top" and magic and kind not in _RUN_BODY:
                    return (f"{name} is defined in {cell_name}, a `{_short(magic, 30)}` cell, which the grader does "
                            "not run as Python: move the code to a normal cell.")
                if where == "main":
                    return (f"{name} is defined under `if __name__ == \"__main__\":` in {cell_name}, which the grader "
                            "skips: define it at the top level of the cell.")
                if where == "nested":
                    return (f"{name} is defined inside another function or class in {cell_name}: define it at the "
                            "top level of the cell.")
            if isinstance(node, (_ast.FunctionDef, _ast.AsyncFunctionDef, _ast.ClassDef)):
                stack += [(n, "nested") for n in node.body]
            elif isinstance(node, _ast.If) and _is_main_guard(node):
                stack += [(n, "main") for n in node.body] + [(n, where) for n in node.orelse]
            else:  # if/for/while/with/try blocks run at the level they are written at
                for field in ("body", "orelse", "finalbody", "handlers"):
                    stack += [(n, where) for n in getattr(node, field, []) or [] if isinstance(n, _ast.AST)]
    return None


def _is_main_guard(node) -> bool:
    t = getattr(node, "test", None)
    if not isinstance(t, _ast.Compare) or len(t.ops) != 1 or not isinstance(t.ops[0], _ast.Eq):
        return False
    sides = (t.left, t.comparators[0])
    return (any(isinstance(s, _ast.Name) and s.id == "__name__" for s in sides)
            and any(isinstance(s, _ast.Constant) and s.value == "__main__" for s in sides))
