"""Decode a submission in the trusted process: .py, .ipynb (code cells -> module) or .zip.

Nothing here executes or compiles student code; it only turns bytes into source files for the
sandbox, with student-facing messages for everything it refuses.
"""
from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass, field

from grader.errors import SubmissionError
from grader.intake import notebook, ziparchive

MAX_SOURCE_BYTES = 2 * 1024 * 1024
MAX_NOTEBOOK_BYTES = 20 * 1024 * 1024


@dataclass
class Decoded:
    kind: str                      # py | ipynb | zip
    module: str                    # module name the main file is imported as
    files: dict[str, bytes]        # relative path -> content, written into the sandbox's work dir
    main: str                      # relative path of the main .py (generated for notebooks)
    notebook: str | None = None    # the notebook JSON (for execute_notebook), if the main file is one
    notes: list[str] = field(default_factory=list)
    linemap: object = None         # grader.intake.notebook.LineMap of a notebook: module line -> cell, line


def kind_of(filename: str) -> str:
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    return ext


def decode(filename: str, data: bytes, module: str = "submission", accepted=("py", "ipynb", "zip"),
           import_module: bool = True) -> Decoded:
    """Decode an upload. ``import_module`` is the pack's: when false the notebook is executed as a
    notebook (IPython magics run; only shell commands are removed) and the notes say so.

    Raises SubmissionError (with a message for the student) for anything it cannot decode, and
    nothing else: a parser that trips over malformed input is a refusal, never a crash."""
    try:
        return _decode(filename, data, module, accepted, import_module)
    except SubmissionError:
        raise
    except (RecursionError, MemoryError):
        raise SubmissionError(f"'{filename}' is too deeply nested or too large to be read.") from None
    except Exception as exc:  # noqa: BLE001  zlib.error, UnicodeError, ... from malformed bytes
        raise SubmissionError(f"'{filename}' could not be read: it is damaged or not a valid "
                              f".{kind_of(filename) or 'py'} file ({type(exc).__name__}).") from None


def _decode(filename: str, data: bytes, module: str, accepted, import_module: bool) -> Decoded:
    kind = kind_of(filename)
    if kind not in ("py", "ipynb", "zip"):
        raise SubmissionError(f"'{filename}' is not a .py, .ipynb or .zip file.")
    if kind not in accepted:
        raise SubmissionError(f"This assignment accepts {', '.join('.' + k for k in accepted)} files, not .{kind}.")
    if kind == "py":
        _text(data, filename)
        return Decoded("py", module, {f"{module}.py": data}, f"{module}.py")
    if kind == "ipynb":
        conv, notes, nb_json = _notebook(data, filename, import_module)
        return Decoded("ipynb", module, _notebook_files(conv, module, {}), f"{module}.py", nb_json, notes,
                       _linemap(conv, module))
    return _decode_zip(filename, data, module, accepted, import_module)


def _text(data: bytes, filename: str, limit: int = MAX_SOURCE_BYTES) -> str:
    if len(data) > limit:
        raise SubmissionError(f"'{filename}' is too large ({len(data) // 1024} KiB; the limit is {limit // 1024} KiB).")
    if b"\0" in data:
        raise SubmissionError(f"'{filename}' is not a text file (it contains NUL bytes).")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SubmissionError(f"'{filename}' is not UTF-8 text (bad byte at position {exc.start}).") from None


# --------------------------------------------------------------------------- notebooks

_nbformat = None


def _nbf():
    """nbformat is imported once per trusted process (its schema checks are slow to import)."""
    global _nbformat
    if _nbformat is None:
        import nbformat

        _nbformat = nbformat
    return _nbformat


def notebook_to_source(data: bytes, filename: str, import_module: bool = True) -> tuple[str, list[str], str]:
    """(module source of the code cells, notes for the student, the notebook JSON to execute): the
    engine's own conversion, for what compares notebooks as code (grader/similarity/)."""
    conv, notes, nb_json = _notebook(data, filename, import_module)
    return conv.source, notes, nb_json


def _notebook(data: bytes, filename: str, import_module: bool = True):
    """(grader.intake.notebook.Converted, notes for the student, the notebook JSON to execute).

    The source is what gets imported (magics and shell lines replaced by ``pass``); the notebook
    JSON is what ``execute_notebook`` runs (shell commands removed, other magics kept). The note
    describes the one the pack uses: ``import_module`` true, the import; false, the execution."""
    text = _text(data, filename, MAX_NOTEBOOK_BYTES)
    load_notebook_json(text, filename)
    nbformat = _nbf()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # old notebooks without cell ids are fine
            nb = nbformat.reads(text, as_version=4)
            nbformat.validate(nb)
    except Exception as exc:  # nbformat raises several types (ValidationError, NBFormatError, ...)
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SubmissionError(f"'{filename}' is not a valid notebook: {msg[:300]}") from None
    # the module to import is converted from the cells as written; the JSON to execute loses its shell commands
    conv = notebook.to_module(nb, import_module)
    shell: list[str] = []
    for index, cell in enumerate(nb.cells, start=1):
        if cell.cell_type == "code":
            shell += [f"cell {index}: {what}" for what in _sanitize_for_kernel(cell)]
    notes = list(conv.notes)
    if not import_module and shell:
        listed = "; ".join(shell[:10]) + (f"; and {len(shell) - 10} more" if len(shell) > 10 else "")
        notes.insert(0, f"{len(shell)} shell command(s) were removed before your notebook was run (installs and "
                        f"shell commands do not run in the grader): {listed}")
    return conv, notes, nbformat.writes(nb)


NOTEBOOK_MAX_DEPTH = 64
NOTEBOOK_MAX_NODES = 1_000_000
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def load_notebook_json(text: str, filename: str) -> dict:
    """Parse and check a notebook's JSON before nbformat sees it: valid JSON, an object with a
    ``cells`` list of objects whose ``cell_type`` is a string and ``source`` a string or a list
    of strings, at most NOTEBOOK_MAX_DEPTH levels and NOTEBOOK_MAX_NODES values, and no lone
    surrogate (a ``\\ud800`` escape) in any string or key. Raises SubmissionError."""
    bad = f"'{filename}' is not a valid notebook"
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise SubmissionError(f"{bad}: it is not JSON ({str(exc)[:200]}).") from None
    except RecursionError:
        raise SubmissionError(f"{bad}: it is nested too deeply.") from None
    # iterative walk: no recursion, bounded by the number of values
    stack = [(raw, 0)]
    nodes = 0
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if nodes > NOTEBOOK_MAX_NODES:
            raise SubmissionError(f"{bad}: it has too many values (more than {NOTEBOOK_MAX_NODES}).")
        if depth > NOTEBOOK_MAX_DEPTH:
            raise SubmissionError(f"{bad}: it is nested too deeply (more than {NOTEBOOK_MAX_DEPTH} levels).")
        if isinstance(value, str):
            if _LONE_SURROGATE.search(value):
                raise SubmissionError(f"{bad}: it contains an invalid character (a lone UTF-16 surrogate escape).")
        elif isinstance(value, dict):
            for k, v in value.items():
                if _LONE_SURROGATE.search(k):
                    raise SubmissionError(f"{bad}: it contains an invalid character (a lone UTF-16 surrogate escape).")
                stack.append((v, depth + 1))
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
    if not isinstance(raw, dict) or not isinstance(raw.get("cells"), list):
        raise SubmissionError(f"{bad}: no 'cells' list.")
    for index, cell in enumerate(raw["cells"], start=1):
        if not isinstance(cell, dict) or not isinstance(cell.get("cell_type"), str):
            raise SubmissionError(f"{bad}: cell {index} is not a notebook cell.")
        source = cell.get("source", "")
        if not (isinstance(source, str) or (isinstance(source, list) and all(isinstance(x, str) for x in source))):
            raise SubmissionError(f"{bad}: the source of cell {index} is not text.")
    if not isinstance(raw.get("metadata", {}), dict):
        raise SubmissionError(f"{bad}: its metadata is not an object.")
    return raw


_SHELL_LINE = re.compile(r"^(\s*)(!|\w+\s*=\s*!|%(pip|conda|mamba|system|sx|sc|bash|sh|run|load|writefile)\b)")
# %%writefile, %%html, %%javascript run in a kernel as in Jupyter (the file lands in the sandbox's scratch folder)
_SHELL_CELLS = ("%%bash", "%%sh", "%%script", "%%system", "%%sx", "%%perl", "%%ruby")


def _notebook_files(conv, module: str, files: dict) -> dict:
    """The sandbox's files for a converted notebook: the module, and each .py a %%writefile cell
    writes (given to the [forbid] scan; the cell writes it again when it runs)."""
    out = dict(files)
    for path, text in conv.written.items():
        if path != f"{module}.py" and path not in out:
            out[path] = text.encode()
    out[f"{module}.py"] = conv.source.encode()
    return out


def _linemap(conv, module: str):
    conv.linemap.filename = f"{module}.py"
    return conv.linemap


def _sanitize_for_kernel(cell) -> list[str]:
    """When the notebook itself is executed (nbclient, inside the sandbox), shell commands and
    installs are removed; other IPython magics (e.g. %matplotlib inline) work in a kernel and stay.
    Returns what was removed (for the student's note)."""
    src = cell.source
    first = src.lstrip().splitlines()[0] if src.strip() else ""
    if first.startswith(_SHELL_CELLS):
        cell.source = f"# dropped by the grader: {first[:60]} cell"
        return [f"the whole `{first[:60]}` cell"]
    out = []
    removed = []
    for ln in src.splitlines():
        m = _SHELL_LINE.match(ln)
        if m:
            removed.append(f"`{ln.strip()[:60]}`")
        out.append(f"{m.group(1)}pass  # dropped by the grader: shell command" if m else ln)
    cell.source = "\n".join(out)
    return removed


# --------------------------------------------------------------------------- zip

def _decode_zip(filename: str, data: bytes, module: str, accepted, import_module: bool = True) -> Decoded:
    """The zip policy (grader.intake.ziparchive.SUBMISSIONS) checks and unpacks; then the main file is found."""
    try:
        with ziparchive.open_zip(data, filename, ziparchive.SUBMISSIONS) as archive:
            unpacked = archive.read()
    except ziparchive.ZipRefused as exc:
        raise SubmissionError(exc.message) from None
    entries = list(unpacked)
    # strip one common top-level folder ("myproject/attention.py")
    tops = {n.split("/", 1)[0] for n in entries}
    strip = len(tops) == 1 and all("/" in n for n in entries)
    files: dict[str, bytes] = {}
    for norm, content in unpacked.items():
        rel = norm.split("/", 1)[1] if strip else norm
        if rel.endswith(".py"):
            _text(content, rel)
        files[rel] = content
    top_level = [n for n in files if "/" not in n]
    main = None
    for cand in (f"{module}.py", f"{module}.ipynb"):
        if cand in files:
            main = cand
            break
    if main is None:
        code = [n for n in top_level if n.endswith((".py", ".ipynb"))]
        if len(code) == 1:
            main = code[0]
        else:
            found = ", ".join(sorted(code)) or "none"
            raise SubmissionError(
                f"'{filename}' must contain {module}.py or {module}.ipynb at its top level, "
                f"or exactly one .py/.ipynb file (found: {found}).")
    notes: list[str] = []
    notebook = linemap = None
    if main.endswith(".ipynb"):
        if "ipynb" not in accepted:
            raise SubmissionError("This assignment does not accept notebooks.")
        conv, notes, notebook = _notebook(files.pop(main), main, import_module)
        main_py = f"{module}.py"
        files = _notebook_files(conv, module, files)
        linemap = _linemap(conv, module)
    else:
        _text(files[main], main)
        main_py = f"{module}.py"
        if main != main_py:
            files[main_py] = files.pop(main)
            notes.append(f"{main} was imported as {main_py}.")
    return Decoded("zip", module, files, main_py, notebook, notes, linemap)
