"""Decode a submission in the trusted process: .py, .ipynb (code cells -> module) or .zip.

Nothing here executes or compiles student code; it only turns bytes into source files for the
sandbox, with student-facing messages for everything it refuses.
"""
from __future__ import annotations

import io
import json
import posixpath
import re
import stat
import warnings
import zipfile
from dataclasses import dataclass, field

MAX_SOURCE_BYTES = 2 * 1024 * 1024
MAX_NOTEBOOK_BYTES = 20 * 1024 * 1024
ZIP_MAX_ENTRIES = 200
ZIP_MAX_TOTAL = 20 * 1024 * 1024
ZIP_MAX_RATIO = 100
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.\- ]+$")
_IGNORED = ("__MACOSX/", ".DS_Store", "__pycache__/", ".ipynb_checkpoints/", ".git/")


class SubmissionError(Exception):
    """The submission cannot be graded; the message is shown to the student."""


@dataclass
class Decoded:
    kind: str                      # py | ipynb | zip
    module: str                    # module name the main file is imported as
    files: dict[str, bytes]        # relative path -> content, written into the sandbox's work dir
    main: str                      # relative path of the main .py (generated for notebooks)
    notebook: str | None = None    # the notebook JSON (for execute_notebook), if the main file is one
    notes: list[str] = field(default_factory=list)


def kind_of(filename: str) -> str:
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    return ext


def decode(filename: str, data: bytes, module: str = "submission", accepted=("py", "ipynb", "zip"),
           import_module: bool = True) -> Decoded:
    """Decode an upload. ``import_module`` is the pack's: when false the notebook is executed as a
    notebook (IPython magics run; only shell commands are removed) and the notes say so."""
    kind = kind_of(filename)
    if kind not in ("py", "ipynb", "zip"):
        raise SubmissionError(f"'{filename}' is not a .py, .ipynb or .zip file.")
    if kind not in accepted:
        raise SubmissionError(f"This assignment accepts {', '.join('.' + k for k in accepted)} files, not .{kind}.")
    if kind == "py":
        _text(data, filename)
        return Decoded("py", module, {f"{module}.py": data}, f"{module}.py")
    if kind == "ipynb":
        source, notes, nb_json = notebook_to_source(data, filename, import_module)
        return Decoded("ipynb", module, {f"{module}.py": source.encode()}, f"{module}.py", nb_json, notes)
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


_MAGIC = re.compile(r"^(\s*)(%%?\w|!|\w+\s*=\s*!|\?|\w[\w.]*\?\??\s*$)")
_KEEP_BODY_CELL_MAGICS = {"time", "timeit", "capture", "prun"}


def notebook_to_source(data: bytes, filename: str, import_module: bool = True) -> tuple[str, list[str], str]:
    """(module source of the code cells, notes for the student, the notebook JSON to execute).

    The source is what gets imported (magics and shell lines replaced by ``pass``); the notebook
    JSON is what ``execute_notebook`` runs (shell commands removed, other magics kept). The note
    describes the one the pack uses: ``import_module`` true, the import; false, the execution."""
    text = _text(data, filename, MAX_NOTEBOOK_BYTES)
    nbformat = _nbf()
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise SubmissionError(f"'{filename}' is not a valid notebook: it is not JSON ({exc}).") from None
    if not isinstance(raw, dict) or "cells" not in raw:
        raise SubmissionError(f"'{filename}' is not a valid notebook: no 'cells' list.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # old notebooks without cell ids are fine
            nb = nbformat.reads(text, as_version=4)
            nbformat.validate(nb)
    except Exception as exc:  # nbformat raises several types (ValidationError, NBFormatError, ...)
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SubmissionError(f"'{filename}' is not a valid notebook: {msg[:300]}") from None
    parts: list[str] = []
    dropped: list[str] = []
    shell: list[str] = []
    for index, cell in enumerate(nb.cells, start=1):
        if cell.cell_type != "code":
            continue
        lines = cell.source.splitlines()
        shell += [f"cell {index}: {what}" for what in _sanitize_for_kernel(cell)]
        first = lines[0].strip() if lines else ""
        if first.startswith("%%"):
            name = first[2:].split()[0] if len(first) > 2 else ""
            if name in _KEEP_BODY_CELL_MAGICS:
                dropped.append(f"cell {index}: `{first[:60]}`")
                lines = lines[1:]
            else:
                dropped.append(f"cell {index}: the whole `{first[:60]}` cell")
                continue
        out = []
        for ln in lines:
            m = _MAGIC.match(ln)
            if m:
                dropped.append(f"cell {index}: `{ln.strip()[:60]}`")
                out.append(f"{m.group(1)}pass  # dropped: IPython magic/shell line")
            else:
                out.append(ln)
        parts.append(f"# %% cell {index}\n" + "\n".join(out) + "\n")
    notes = []

    def listed(items):
        return "; ".join(items[:10]) + (f"; and {len(items) - 10} more" if len(items) > 10 else "")

    if import_module and dropped:
        notes.append(f"{len(dropped)} IPython magic/shell line(s) were dropped (they do not run in the grader): "
                     f"{listed(dropped)}")
    elif not import_module and shell:
        notes.append(f"{len(shell)} shell command(s) were removed before your notebook was run (installs and "
                     f"shell commands do not run in the grader): {listed(shell)}")
    if not parts:
        notes.append("The notebook has no code cells.")
    return "\n".join(parts), notes, nbformat.writes(nb)


_SHELL_LINE = re.compile(r"^(\s*)(!|\w+\s*=\s*!|%(pip|conda|mamba|system|sx|sc|bash|sh|run|load|writefile)\b)")
_SHELL_CELLS = ("%%bash", "%%sh", "%%script", "%%system", "%%writefile", "%%file", "%%html", "%%javascript", "%%js")


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
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as exc:
        raise SubmissionError(f"'{filename}' is not a valid zip archive ({exc}).") from None
    if len(infos) > ZIP_MAX_ENTRIES:
        raise SubmissionError(f"'{filename}' has {len(infos)} entries; at most {ZIP_MAX_ENTRIES} are allowed.")
    entries = []
    declared = 0
    for info in infos:
        name = info.filename
        if info.is_dir() or any(x in name for x in _IGNORED) or name.endswith(".pyc"):
            continue
        mode = (info.external_attr >> 16) & 0xFFFF
        if stat.S_ISLNK(mode):
            raise SubmissionError(f"'{filename}' contains a symbolic link ({name}); links are not allowed.")
        if info.flag_bits & 0x1:
            raise SubmissionError(f"'{filename}' contains an encrypted entry ({name}).")
        if "\\" in name or name.startswith("/") or re.match(r"^[A-Za-z]:", name):
            raise SubmissionError(f"'{filename}' contains an unsafe path ({name}): absolute paths are not allowed.")
        norm = posixpath.normpath(name)
        if norm.startswith("../") or norm == ".." or "/../" in f"/{name}/":
            raise SubmissionError(f"'{filename}' contains an unsafe path ({name}): '..' is not allowed.")
        if not all(_SAFE_NAME.match(part) for part in norm.split("/")):
            raise SubmissionError(f"'{filename}' contains a file name with unsupported characters ({name[:80]}).")
        declared += info.file_size
        if declared > ZIP_MAX_TOTAL:
            raise SubmissionError(f"'{filename}' unpacks to more than {ZIP_MAX_TOTAL // (1024 * 1024)} MiB.")
        if info.file_size > 1024 * 1024 and info.file_size > ZIP_MAX_RATIO * max(info.compress_size, 1):
            raise SubmissionError(f"'{filename}' looks like a zip bomb ({name} compresses {info.file_size // max(info.compress_size, 1)}:1).")
        entries.append((norm, info))
    if not entries:
        raise SubmissionError(f"'{filename}' contains no files.")
    # strip one common top-level folder ("myproject/attention.py")
    tops = {n.split("/", 1)[0] for n, _ in entries}
    strip = len(tops) == 1 and all("/" in n for n, _ in entries)
    files: dict[str, bytes] = {}
    total = 0
    for norm, info in entries:
        rel = norm.split("/", 1)[1] if strip else norm
        with zf.open(info) as fh:
            content = fh.read(info.file_size + 1)  # never trust the declared size beyond one byte
        if len(content) != info.file_size:
            raise SubmissionError(f"'{filename}': entry {norm} is corrupt (its size does not match).")
        total += len(content)
        if total > ZIP_MAX_TOTAL:
            raise SubmissionError(f"'{filename}' unpacks to more than {ZIP_MAX_TOTAL // (1024 * 1024)} MiB.")
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
    notebook = None
    if main.endswith(".ipynb"):
        if "ipynb" not in accepted:
            raise SubmissionError("This assignment does not accept notebooks.")
        source, notes, notebook = notebook_to_source(files.pop(main), main, import_module)
        main_py = f"{module}.py"
        files[main_py] = source.encode()
    else:
        _text(files[main], main)
        main_py = f"{module}.py"
        if main != main_py:
            files[main_py] = files.pop(main)
            notes.append(f"{main} was imported as {main_py}.")
    return Decoded("zip", module, files, main_py, notebook, notes)
