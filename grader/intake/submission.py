"""Decode a submission in the trusted process: .py, .ipynb (code cells -> module) or .zip.

Nothing here executes or compiles student code; it only turns bytes into source files for the
sandbox, with student-facing messages for everything it refuses.
"""
from __future__ import annotations

import base64
import copy
import hashlib
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

    def dumps(self) -> bytes:
        """The decoded form as JSON, for a trusted store (the web keeps it next to the upload, so
        that the worker does not parse the upload again): ``Decoded.loads`` reads it back."""
        lm = self.linemap
        return json.dumps({
            "format": DECODED_FORMAT, "kind": self.kind, "module": self.module, "main": self.main,
            "files": {path: base64.b64encode(data).decode("ascii") for path, data in self.files.items()},
            "notebook": self.notebook, "notes": list(self.notes),
            "linemap": None if lm is None else {"lines": lm.lines, "cells": {str(k): v for k, v in lm.cells.items()},
                                                "filename": lm.filename},
        }).encode()

    @classmethod
    def loads(cls, blob: bytes) -> Decoded:
        """What ``dumps`` wrote (trusted: written by the platform, never by a student). Raises
        ValueError for another format."""
        d = json.loads(blob)
        if d.get("format") != DECODED_FORMAT:
            raise ValueError("a decoded form of another format")
        lm = d["linemap"]
        linemap = None if lm is None else notebook.LineMap(
            lines=[tuple(x) if isinstance(x, list) else x for x in lm["lines"]],
            cells={int(k): v for k, v in lm["cells"].items()}, filename=lm["filename"])
        return cls(d["kind"], d["module"], {p: base64.b64decode(v) for p, v in d["files"].items()}, d["main"],
                   d["notebook"], list(d["notes"]), linemap)


# The decoded form's version: part of its storage key (decoded_key), so a change of the conversion
# (grader/intake/notebook.py, this module) must bump it and a stored form of an older engine is not used.
DECODED_FORMAT = 1


def decoded_key(module: str, import_module: bool, accepted) -> str:
    """What a decoded form depends on besides the upload's bytes: the pack's module, import_module
    and accepted kinds, and the format. Safe in a file name."""
    return f"{module}-{int(bool(import_module))}-{'.'.join(accepted)}-f{DECODED_FORMAT}"


def kind_of(filename: str) -> str:
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    return ext


def decode(filename: str, data: bytes, module: str = "submission", accepted=("py", "ipynb", "zip"),
           import_module: bool = True) -> Decoded:
    """Decode an upload. ``import_module`` is the pack's: when false the notebook is executed as a
    notebook (IPython magics run; only shell commands are removed) and the notes say so.

    Raises SubmissionError (with a message for the student) for anything it cannot decode, and
    nothing else: a parser that trips over malformed input is a refusal, never a crash."""
    return take(filename, data, accepted=accepted).decode(module, import_module)


# --------------------------------------------------------------------------- the one intake

def read_bounded(source, limit: int) -> tuple[bytes, str]:
    """Read an upload once, never more than ``limit`` bytes, hashing as it goes: (bytes, sha256).
    ``source`` is bytes, an object with ``chunks()`` (Django's UploadedFile) or a binary file.
    Raises SubmissionError (code too_large, detail limit) past the limit."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if len(data) > limit:
            raise SubmissionError(f"The file is larger than the limit of {limit // 1024} KiB.", "too_large", limit=limit)
        return data, hashlib.sha256(data).hexdigest()
    if hasattr(source, "seek"):
        source.seek(0)
    chunks = source.chunks() if hasattr(source, "chunks") else iter(lambda: source.read(64 * 1024), b"")
    digest, parts, size = hashlib.sha256(), [], 0
    for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise SubmissionError(f"The file is larger than the limit of {limit // 1024} KiB.", "too_large", limit=limit)
        digest.update(chunk)
        parts.append(chunk)
    if hasattr(source, "seek"):
        source.seek(0)  # the caller may hand the same file on (Django streams it again if asked)
    return b"".join(parts), digest.hexdigest()


@dataclass(frozen=True)
class Intake:
    """An upload read, bounded, hashed and decoded once (``take``): the bytes, their hash, and what
    its kind needs, parsed and checked once: a .py's text; a notebook's JSON walked within bounds
    and validated by nbformat; a zip checked by the zip policy and unpacked. ``decode(module, ...)``
    turns it into the sandbox's files for a pack without reading or parsing it again. Immutable:
    ``decode`` works on copies."""

    name: str
    kind: str                       # py | ipynb | zip
    data: bytes
    sha256: str
    nbformat: int | None = None     # a notebook's declared major format
    code_cells: int = 0             # a notebook's code cells
    paths: tuple = ()               # a zip's files (junk left out, normalised)
    accepted: tuple = ("py", "ipynb", "zip")
    _notebook: object = field(default=None, repr=False, compare=False)   # the validated NotebookNode
    _files: tuple = field(default=(), repr=False, compare=False)         # a zip's (path, bytes), unpacked

    @property
    def size(self) -> int:
        return len(self.data)

    def decode(self, module: str = "submission", import_module: bool = True) -> Decoded:
        """The sandbox's files for a pack whose module is ``module`` (a fresh Decoded each call)."""
        return _guarded(self.name, lambda: self._decode(module, import_module))

    def _decode(self, module: str, import_module: bool) -> Decoded:
        if self.kind == "py":
            return Decoded("py", module, {f"{module}.py": self.data}, f"{module}.py")
        if self.kind == "ipynb":
            conv, notes, nb_json = _convert(copy.deepcopy(self._notebook), import_module)
            return Decoded("ipynb", module, _notebook_files(conv, module, {}), f"{module}.py", nb_json, notes,
                           _linemap(conv, module))
        return _decode_zip(self.name, dict(self._files), module, self.accepted, import_module)


def take(filename: str, data: bytes, *, accepted=("py", "ipynb", "zip"), require_v4: bool = False,
         sha256: str | None = None) -> Intake:
    """The one intake of an upload: its kind's decoding and checks, each once (the bounded walk
    of a notebook first, nbformat's validation after it). ``require_v4`` refuses a notebook of
    another major format (code nbformat) before nbformat converts it. Raises SubmissionError (with
    a message for the student and a ``code``), and nothing else. ``sha256``: the hash read_bounded
    computed while reading (not computed again)."""
    return _guarded(filename, lambda: _take(filename, bytes(data), tuple(accepted), require_v4, sha256))


def _guarded(filename: str, work):
    try:
        return work()
    except SubmissionError:
        raise
    except (RecursionError, MemoryError):
        raise SubmissionError(f"'{filename}' is too deeply nested or too large to be read.", "unreadable",
                              nested=True) from None
    except Exception as exc:  # noqa: BLE001  zlib.error, UnicodeError, ... from malformed bytes
        raise SubmissionError(f"'{filename}' could not be read: it is damaged or not a valid "
                              f".{kind_of(filename) or 'py'} file ({type(exc).__name__}).", "unreadable",
                              error=type(exc).__name__) from None


def _take(filename: str, data: bytes, accepted: tuple, require_v4: bool, sha256: str | None) -> Intake:
    kind = kind_of(filename)
    if kind not in ("py", "ipynb", "zip"):
        raise SubmissionError(f"'{filename}' is not a .py, .ipynb or .zip file.", "extension")
    if kind not in accepted:
        raise SubmissionError(f"This assignment accepts {', '.join('.' + k for k in accepted)} files, not .{kind}.",
                              "extension")
    digest = sha256 or hashlib.sha256(data).hexdigest()
    if kind == "py":
        _text(data, filename)
        return Intake(filename, kind, data, digest, accepted=accepted)
    if kind == "ipynb":
        text = _text(data, filename, MAX_NOTEBOOK_BYTES)
        raw, nb = read_notebook(text, filename, require_v4=require_v4)
        cells = sum(1 for c in raw["cells"] if c.get("cell_type") == "code")
        major = raw.get("nbformat") if isinstance(raw.get("nbformat"), int) else None
        return Intake(filename, kind, data, digest, major, cells, accepted=accepted, _notebook=nb)
    try:
        with ziparchive.open_zip(data, filename, ziparchive.SUBMISSIONS) as archive:
            unpacked = archive.read()
            paths = tuple(archive.paths)
    except ziparchive.ZipRefused as exc:
        raise SubmissionError(exc.message, exc.code) from None
    return Intake(filename, kind, data, digest, paths=paths, accepted=accepted, _files=tuple(unpacked.items()))


def _text(data: bytes, filename: str, limit: int = MAX_SOURCE_BYTES) -> str:
    if len(data) > limit:
        raise SubmissionError(f"'{filename}' is too large ({len(data) // 1024} KiB; the limit is {limit // 1024} KiB).",
                              "too_large")
    if b"\0" in data:
        raise SubmissionError(f"'{filename}' is not a text file (it contains NUL bytes).", "not_text", nul=True)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SubmissionError(f"'{filename}' is not UTF-8 text (bad byte at position {exc.start}).", "not_text",
                              position=exc.start) from None


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
    _, nb = read_notebook(_text(data, filename, MAX_NOTEBOOK_BYTES), filename)
    return _convert(nb, import_module)


def read_notebook(text: str, filename: str, require_v4: bool = False):
    """The one parse of a notebook: its JSON parsed and walked within bounds (load_notebook_json)
    first, then nbformat builds and validates the notebook from that parse, once (no second JSON
    parse, no validation again when it is written). Returns (the walked JSON, the nbformat-4
    NotebookNode, a copy: the JSON is never changed). Raises SubmissionError."""
    raw = load_notebook_json(text, filename)
    if require_v4 and raw.get("nbformat") != 4:
        major = raw.get("nbformat")
        raise SubmissionError(f"'{filename}' uses notebook format {major if isinstance(major, int) else 'unknown'}; "
                              "only format 4 is accepted.", "nbformat", major=major)
    nbformat = _nbf()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # old notebooks without cell ids are fine
            major, minor = nbformat.reader.get_version(raw)
            if major not in nbformat.versions:
                raise nbformat.NBFormatError(f"Unsupported nbformat version {major}")
            try:
                nb = nbformat.versions[major].to_notebook_json(raw, minor=minor)
            except AttributeError as exc:
                raise nbformat.ValidationError(f"The notebook is invalid and is missing an expected key: {exc}") from None
            nb = nbformat.convert(nb, 4)
            nbformat.validate(nb)
    except Exception as exc:  # nbformat raises several types (ValidationError, NBFormatError, ...)
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SubmissionError(f"'{filename}' is not a valid notebook: {msg[:300]}", "bad_notebook",
                              first_line=msg[:200]) from None
    return raw, nb


def _convert(nb, import_module: bool):
    nbformat = _nbf()
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
    return conv, notes, nbformat.versions[4].writes_json(nb)  # validated above: written as nbformat.writes does


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
        where = (exc.lineno, exc.colno) if isinstance(exc, json.JSONDecodeError) else None
        raise SubmissionError(f"{bad}: it is not JSON ({str(exc)[:200]}).", "bad_notebook", json_error=where) from None
    except RecursionError:
        raise SubmissionError(f"{bad}: it is nested too deeply.", "bad_notebook") from None
    # iterative walk: no recursion, bounded by the number of values
    stack = [(raw, 0)]
    nodes = 0
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if nodes > NOTEBOOK_MAX_NODES:
            raise SubmissionError(f"{bad}: it has too many values (more than {NOTEBOOK_MAX_NODES}).", "bad_notebook")
        if depth > NOTEBOOK_MAX_DEPTH:
            raise SubmissionError(f"{bad}: it is nested too deeply (more than {NOTEBOOK_MAX_DEPTH} levels).", "bad_notebook")
        if isinstance(value, str):
            if _LONE_SURROGATE.search(value):
                raise SubmissionError(f"{bad}: it contains an invalid character (a lone UTF-16 surrogate escape).", "bad_notebook")
        elif isinstance(value, dict):
            for k, v in value.items():
                if _LONE_SURROGATE.search(k):
                    raise SubmissionError(f"{bad}: it contains an invalid character (a lone UTF-16 surrogate escape).", "bad_notebook")
                stack.append((v, depth + 1))
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
    if not isinstance(raw, dict) or not isinstance(raw.get("cells"), list):
        raise SubmissionError(f"{bad}: no 'cells' list.", "bad_notebook")
    for index, cell in enumerate(raw["cells"], start=1):
        if not isinstance(cell, dict) or not isinstance(cell.get("cell_type"), str):
            raise SubmissionError(f"{bad}: cell {index} is not a notebook cell.", "bad_notebook")
        source = cell.get("source", "")
        if not (isinstance(source, str) or (isinstance(source, list) and all(isinstance(x, str) for x in source))):
            raise SubmissionError(f"{bad}: the source of cell {index} is not text.", "bad_notebook")
    if not isinstance(raw.get("metadata", {}), dict):
        raise SubmissionError(f"{bad}: its metadata is not an object.", "bad_notebook")
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

def _decode_zip(filename: str, unpacked: dict, module: str, accepted, import_module: bool = True) -> Decoded:
    """The main file of a zip the policy (grader.intake.ziparchive.SUBMISSIONS) checked and unpacked (take)."""
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
