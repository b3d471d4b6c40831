"""Assignment packs: parse and validate ``assignment.toml``; load the trusted driver and reference.

A pack's ``reference.py`` and ``tests.py`` are imported here, in the trusted process only, under
module names unique to the pack's content hash (so two packs, or two versions of one pack, never
share a module).
"""
from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
import threading
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from grader.authoring.driver import collect_cases
from grader.errors import PackError
from grader.intake import forbid

KINDS = ("py", "ipynb", "zip")
QUEUES = ("cpu", "gpu")

DEFAULT_LIMITS = {
    "wall_s": 60.0,
    "case_s": 10.0,
    "memory_mb": 2048,
    "processes": 32,
    "cpu_s": 120,
    "file_mb": 32,
    "scratch_mb": 64,
    "open_files": 256,
    "output_kb": 64,
    "threads": 1,
    "result_mb": 64,
    "gpu_memory_mb": 8192,  # device memory one grade needs (gpu queue): how many sandboxes share a GPU
}
DEFAULT_LATE = {"grace_minutes": 0, "penalty_percent_per_day": 10.0, "max_days": 3}
TRUSTED_FILES = ("assignment.toml", "reference.py", "tests.py")
IGNORED = {"__pycache__", ".pytest_cache", ".ipynb_checkpoints", ".git"}
HASH_DIR = re.compile(r"^[0-9a-f]{64}$")
SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")


@dataclass
class Pack:
    dir: Path
    meta: dict
    hash: str
    slug: str
    _driver: object = field(default=None, repr=False)
    _reference: object = field(default=None, repr=False)

    @property
    def handout(self) -> str:
        p = self.dir / "handout.md"
        return p.read_text(encoding="utf-8") if p.exists() else ""

    @property
    def starter_files(self) -> list[Path]:
        return [p for p in (self.dir / "starter.py", self.dir / "starter.ipynb") if p.exists()]

    @property
    def queue(self) -> str:
        return self.meta["queue"]

    @property
    def preload(self) -> tuple[str, ...]:
        return tuple(self.meta["preload"])

    def reference(self):
        if self._reference is None:
            self._load_modules()
        return self._reference

    def driver(self):
        if self._driver is None:
            self._load_modules()
        return self._driver

    def cases(self) -> list:
        return collect_cases(self.driver())

    def _load_modules(self) -> None:
        with _module_lock:
            cached = _module_cache.get(self.hash)
            if cached is None:
                ref = _import_file(self.dir / "reference.py", f"_grader_pack_{self.hash[:16]}_reference")
                drv = _import_file(self.dir / "tests.py", f"_grader_pack_{self.hash[:16]}_tests")
                cached = _module_cache[self.hash] = (ref, drv)
                cases = collect_cases(drv)
                if not cases:
                    raise PackError(f"{self.dir / 'tests.py'}: defines no @case")
                total = sum(c.points for c in cases)
                if abs(total - float(self.meta["points"])) > 1e-9:
                    _module_cache.pop(self.hash, None)
                    raise PackError(
                        f"{self.dir / 'assignment.toml'}: points = {self.meta['points']} but the cases in tests.py add up to {total:g}")
            self._reference, self._driver = cached


_module_cache: dict[str, tuple] = {}
_module_lock = threading.RLock()


def _import_file(path: Path, name: str):
    if not path.exists():
        raise PackError(f"{path}: missing")
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise PackError(f"{path}: failed to import: {type(exc).__name__}: {exc}") from exc
    return mod


def pack_files(pack_dir: Path):
    """(relative path, path) of every file of the pack, sorted; caches, bytecode and symlinks left out.
    These are the files a pack's identity covers and the platform copies into its trusted store."""
    for path in sorted(Path(pack_dir).rglob("*")):
        rel = path.relative_to(pack_dir)
        if any(part in IGNORED or part.endswith(".pyc") for part in rel.parts) or path.is_symlink():
            continue
        if path.is_file():
            yield rel, path


def pack_hash(pack_dir: Path) -> str:
    """The pack's identity: SHA-256 over every file's path and content (never its mtime), so it
    changes exactly when the pack does; the platform stores a pack under PACK_STORE/<slug>/<hash>/."""
    digest = hashlib.sha256()
    for rel, path in pack_files(pack_dir):
        digest.update(str(rel).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _num(meta: dict, key: str, where: str, *, minimum: float = 0, integer: bool = False):
    v = meta[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < minimum:
        raise PackError(f"{where}: {key} must be a number >= {minimum}, got {v!r}")
    if integer and int(v) != v:
        raise PackError(f"{where}: {key} must be an integer, got {v!r}")
    return int(v) if integer else float(v)


def validate_meta(raw: dict, where: str, slug: str) -> dict:
    meta = dict(raw)
    known = {"title", "slug", "points", "queue", "module", "required", "accepted", "preload", "import_module",
             "seed", "limits", "late", "description", "due", "tags", "forbid", "leaderboard"}
    unknown = sorted(set(meta) - known)
    if unknown:
        raise PackError(f"{where}: unknown field(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    for key in ("title", "points"):
        if key not in meta:
            raise PackError(f"{where}: missing required field '{key}'")
    if not isinstance(meta["title"], str) or not meta["title"].strip():
        raise PackError(f"{where}: title must be a non-empty string")
    meta["points"] = _num(meta, "points", where, minimum=0)
    meta.setdefault("slug", slug)
    if not isinstance(meta["slug"], str) or not SLUG.match(meta["slug"]):
        raise PackError(f"{where}: slug must be letters, digits, '-' or '_' (at most 100, starting with a "
                        f"letter or digit), got {meta['slug']!r}")
    meta.setdefault("queue", "cpu")
    if meta["queue"] not in QUEUES:
        raise PackError(f"{where}: queue must be one of {', '.join(QUEUES)}, got {meta['queue']!r}")
    meta.setdefault("module", "submission")
    if not isinstance(meta["module"], str) or not meta["module"].isidentifier():
        raise PackError(f"{where}: module must be a Python identifier, got {meta['module']!r}")
    meta.setdefault("required", [])
    if not isinstance(meta["required"], list) or not all(isinstance(x, str) and x.isidentifier() for x in meta["required"]):
        raise PackError(f"{where}: required must be a list of Python names")
    meta.setdefault("accepted", list(KINDS))
    if not isinstance(meta["accepted"], list) or not meta["accepted"] or any(k not in KINDS for k in meta["accepted"]):
        raise PackError(f"{where}: accepted must be a non-empty list drawn from {', '.join(KINDS)}")
    meta.setdefault("preload", ["torch"])
    if not isinstance(meta["preload"], list) or not all(isinstance(x, str) for x in meta["preload"]):
        raise PackError(f"{where}: preload must be a list of module names")
    if "torch" not in meta["preload"]:
        meta["preload"] = ["torch"] + list(meta["preload"])
    meta.setdefault("import_module", True)
    if not isinstance(meta["import_module"], bool):
        raise PackError(f"{where}: import_module must be true or false")
    meta.setdefault("seed", 1234)
    if not isinstance(meta["seed"], int) or isinstance(meta["seed"], bool):
        raise PackError(f"{where}: seed must be an integer")
    limits = meta.get("limits", {})
    if not isinstance(limits, dict):
        raise PackError(f"{where}: [limits] must be a table")
    bad = sorted(set(limits) - set(DEFAULT_LIMITS))
    if bad:
        raise PackError(f"{where}: unknown limit(s) {', '.join(bad)} (known: {', '.join(DEFAULT_LIMITS)})")
    merged = dict(DEFAULT_LIMITS, **limits)
    for key, default in DEFAULT_LIMITS.items():
        merged[key] = _num(merged, key, where + " [limits]", minimum=0.001 if isinstance(default, float) else 1,
                           integer=isinstance(default, int))
    meta["limits"] = merged
    late = meta.get("late", {})
    if not isinstance(late, dict):
        raise PackError(f"{where}: [late] must be a table")
    bad = sorted(set(late) - set(DEFAULT_LATE))
    if bad:
        raise PackError(f"{where}: unknown late-policy field(s) {', '.join(bad)} (known: {', '.join(DEFAULT_LATE)})")
    late = dict(DEFAULT_LATE, **late)
    for key in DEFAULT_LATE:
        late[key] = _num(late, key, where + " [late]", minimum=0, integer=key != "penalty_percent_per_day")
    meta["late"] = late
    if "forbid" in meta:
        meta["forbid"] = forbid.validate(meta["forbid"], where)
    else:
        meta["forbid"] = None
    if "leaderboard" in meta:
        board = meta["leaderboard"]
        if not isinstance(board, dict):
            raise PackError(f"{where}: [leaderboard] must be a table")
        bad = sorted(set(board) - {"metric", "order"})
        if bad:
            raise PackError(f"{where} [leaderboard]: unknown field(s) {', '.join(bad)} (known: metric, order)")
        if not isinstance(board.get("metric"), str) or not board["metric"].strip():
            raise PackError(f"{where} [leaderboard]: metric must be a non-empty string (the driver's ctx.metric name)")
        order = board.get("order", "desc")
        if order not in ("desc", "asc"):
            raise PackError(f"{where} [leaderboard]: order must be \"desc\" (higher is better) or \"asc\", got {order!r}")
        meta["leaderboard"] = {"metric": board["metric"].strip(), "order": order}
    return meta


_pack_cache: dict = {}


def _stamp(pack_dir: Path):
    """When load_pack's cached Pack is still valid (a cheap stat of each file; the hash reads them)."""
    out = []
    for rel, path in pack_files(pack_dir):
        try:
            st = path.stat()
        except OSError:
            continue
        out.append((str(rel), st.st_mtime_ns, st.st_size, st.st_ino))
    return tuple(out)


def _default_slug(pack_dir: Path) -> str:
    """The folder's name as a slug (other characters as '-'), so any folder loads; a folder named
    by a content hash (the platform's trusted copies, ``PACK_STORE/<slug>/<sha256>/``) takes its
    parent's name."""
    name = pack_dir.name
    if HASH_DIR.match(name) and pack_dir.parent.name:
        name = pack_dir.parent.name
    s = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-_")[:100]
    return s or "pack"


def load_pack(pack_dir, slug: str | None = None) -> Pack:
    """Parse and validate a pack (cached while its trusted files are unchanged).

    The pack's slug (``Pack.slug``, ``meta["slug"]``, ``result["engine"]["pack"]``) is the toml's
    ``slug`` when it has one, else ``slug`` when the caller passes it, else the folder's name (its
    parent's for a folder named by a sha256, as the platform's ``PACK_STORE/<slug>/<hash>/``)."""
    pack_dir = Path(pack_dir).resolve()
    stamp = _stamp(pack_dir)
    key = (pack_dir, slug)
    hit = _pack_cache.get(key)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    pack = _load_pack(pack_dir, slug)
    _pack_cache[key] = (stamp, pack)
    return pack


def _load_pack(pack_dir: Path, slug: str | None = None) -> Pack:
    toml_path = pack_dir / "assignment.toml"
    if not toml_path.is_file():
        raise PackError(f"{pack_dir}: not an assignment pack (no assignment.toml)")
    try:
        raw = tomllib.loads(toml_path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PackError(f"{toml_path}: {exc}") from None
    meta = validate_meta(raw, str(toml_path), slug or _default_slug(pack_dir))
    for name in ("reference.py", "tests.py"):
        if not (pack_dir / name).is_file():
            raise PackError(f"{pack_dir}: missing {name}")
    return Pack(dir=pack_dir, meta=meta, hash=pack_hash(pack_dir), slug=meta["slug"])
