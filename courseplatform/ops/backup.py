"""Backup and restore of everything that matters: the database, uploaded files (MEDIA_ROOT:
submissions, deliveries, artifacts) and the trusted pack store (PACK_STORE).

One archive (`.tar.gz`) holds:
- `db.json`: every row, written by Django's own `dumpdata` in the `exactjson` format (Django's JSON
  with whole microseconds: courseplatform/ops/exactjson.py; natural keys for content types and
  permissions, which `migrate` recreates on the target) inside one read transaction: on PostgreSQL
  a REPEATABLE READ snapshot, so a backup taken while the site runs is one consistent instant;
  SQLite's read transaction gives the same. The dump is database-neutral: a SQLite site restores
  into PostgreSQL and back.
- `media/` and `packs/`: the file trees. Uploaded files are content-addressed and immutable, so
  copying them after the snapshot finds every file the snapshot names (files added later are
  harmless extras).
- `manifest.json`: the format version, the migrations applied, the row count of every model and the
  SHA-256 of every file; `restore` checks each of them and refuses an archive that does not match.

Restore goes into an empty database and empty storage (it refuses to merge into a live site): it
applies the migrations, loads the rows in one transaction (sequences are reset by loaddata), then
writes the files and verifies every hash and count."""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone as dt_timezone
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.db import connection, transaction
from django.db.migrations.recorder import MigrationRecorder

log = logging.getLogger(__name__)

FORMAT = 1
# Rebuilt by `migrate` on the target (content types, permissions) or worthless there (sessions:
# restoring them would keep every old login alive).
EXCLUDED = ("contenttypes", "auth.permission", "sessions")
TREES = {"media": "MEDIA_ROOT", "packs": "PACK_STORE"}


class BackupError(Exception):
    """A backup that cannot be made or an archive that cannot be restored; the message says why."""


@dataclass
class Manifest:
    format: int
    created_at: str
    database_vendor: str
    migrations: list[str]
    rows: dict[str, int]
    files: dict[str, str] = field(default_factory=dict)  # "media/blobs/ab/....py" -> sha256

    def to_json(self) -> bytes:
        return json.dumps(self.__dict__, indent=1, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> "Manifest":
        raw = json.loads(data)
        if raw.get("format") != FORMAT:
            raise BackupError(f"archive format {raw.get('format')!r} is not {FORMAT}: made by another version")
        return cls(**{k: raw[k] for k in ("format", "created_at", "database_vendor", "migrations", "rows", "files")})


def _models():
    excluded_apps = {e for e in EXCLUDED if "." not in e}
    excluded_models = {e for e in EXCLUDED if "." in e}
    for model in apps.get_models():
        label = model._meta.label_lower
        if model._meta.app_label in excluded_apps or label in excluded_models or not model._meta.managed:
            continue
        if model._meta.proxy:
            continue
        yield label, model


def row_counts() -> dict[str, int]:
    return {label: model._default_manager.count() for label, model in _models()}


def _applied_migrations() -> list[str]:
    return sorted(f"{app}.{name}" for app, name in MigrationRecorder(connection).applied_migrations())


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _tree_files(root: Path):
    if not root.is_dir():
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.is_symlink() or not path.is_file():
                continue  # nothing outside the tree is followed into the archive
            yield path


def create_backup(destination: Path) -> Manifest:
    """Write the archive to `destination` (written beside it, then renamed: never a half archive)."""
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cp-backup-", dir=destination.parent) as tmp:
        dump = Path(tmp) / "db.json"
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cur:  # the first statement: one snapshot for every table
                    cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            rows = row_counts()
            migrations = _applied_migrations()
            call_command("dumpdata", "--format", "exactjson", "--natural-foreign",
                         *[f"--exclude={e}" for e in EXCLUDED], "--output", str(dump), verbosity=0)
        manifest = Manifest(format=FORMAT, created_at=datetime.now(dt_timezone.utc).isoformat(),
                            database_vendor=connection.vendor, migrations=migrations, rows=rows)
        partial = destination.with_name(destination.name + ".partial")
        with tarfile.open(partial, "w:gz", compresslevel=6) as tar:
            tar.add(dump, arcname="db.json")
            for prefix, setting in TREES.items():
                root = Path(getattr(settings, setting))
                for path in _tree_files(root):
                    arcname = f"{prefix}/{path.relative_to(root).as_posix()}"
                    manifest.files[arcname] = _sha256(path)
                    tar.add(path, arcname=arcname, recursive=False)
            data = manifest.to_json()
            info = tarfile.TarInfo("manifest.json")
            info.size = len(data)
            info.mtime = int(datetime.now().timestamp())
            tar.addfile(info, io.BytesIO(data))
        os.replace(partial, destination)
    log.info("backup written to %s: %d rows in %d models, %d files", destination, sum(rows.values()),
             len(rows), len(manifest.files))
    return manifest


def read_manifest(archive: Path) -> Manifest:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            member = tar.getmember("manifest.json")
            return Manifest.from_json(tar.extractfile(member).read())
    except (tarfile.TarError, KeyError, OSError, ValueError) as exc:
        raise BackupError(f"{archive} is not a courseplatform backup: {exc}") from exc


def _user_rows() -> dict[str, int]:
    """Rows that `migrate` does not create: a restore target must have none."""
    return {label: n for label, n in row_counts().items() if n}


def _check_empty_target() -> None:
    rows = _user_rows()
    if rows:
        shown = ", ".join(f"{label}: {n}" for label, n in sorted(rows.items())[:6])
        raise BackupError(f"the database is not empty ({shown}); restore only into an empty database")
    for prefix, setting in TREES.items():
        root = Path(getattr(settings, setting))
        if next(_tree_files(root), None) is not None:
            raise BackupError(f"{setting} ({root}) is not empty; restore only into empty storage")


def restore_backup(archive: Path) -> Manifest:
    """Restore the archive into this site's (empty) database and storage, verifying everything."""
    archive = Path(archive)
    manifest = read_manifest(archive)
    call_command("migrate", interactive=False, verbosity=0)
    missing = sorted(set(manifest.migrations) - set(_applied_migrations()))
    if missing:
        raise BackupError(f"this code lacks migrations the backup was made with: {', '.join(missing[:5])}")
    _check_empty_target()
    with tempfile.TemporaryDirectory(prefix="cp-restore-") as tmp:
        tmp = Path(tmp)
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(tmp, filter="data")  # refuses absolute paths, "..", links out of the folder
        for arcname, digest in manifest.files.items():
            path = tmp / arcname
            if not path.is_file() or _sha256(path) != digest:
                raise BackupError(f"{arcname} is missing from the archive or does not match its hash")
        with transaction.atomic():
            call_command("loaddata", str(tmp / "db.json"), verbosity=0)
            counts = row_counts()
            wrong = {k: (counts.get(k, 0), n) for k, n in manifest.rows.items() if counts.get(k, 0) != n}
            if wrong:
                raise BackupError(f"row counts differ after loading (now, expected): {wrong}")
        for prefix, setting in TREES.items():
            root = Path(getattr(settings, setting))
            root.mkdir(parents=True, exist_ok=True)
            source = tmp / prefix
            if source.is_dir():
                shutil.copytree(source, root, dirs_exist_ok=True)
    for arcname, digest in manifest.files.items():
        prefix, rel = arcname.split("/", 1)
        if _sha256(Path(getattr(settings, TREES[prefix])) / rel) != digest:
            raise BackupError(f"{arcname} was not restored intact")
    log.info("restored %s: %d rows, %d files", archive, sum(manifest.rows.values()), len(manifest.files))
    return manifest
