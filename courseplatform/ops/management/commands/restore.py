"""`manage.py restore ARCHIVE`: a backup made by `manage.py backup`, restored into an empty database
and empty storage (a fresh machine), with every row count and file hash checked."""
from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from courseplatform.ops.backup import BackupError, restore_backup


class Command(BaseCommand):
    help = "Restore a backup archive into an empty database and empty MEDIA_ROOT/PACK_STORE, verifying it."

    def add_arguments(self, parser):
        parser.add_argument("archive", type=Path)

    def handle(self, *args, archive: Path, **options):
        if not archive.is_file():
            raise CommandError(f"{archive}: no such file")
        try:
            manifest = restore_backup(archive)
        except (BackupError, OSError) as exc:
            raise CommandError(f"restore failed: {exc}") from exc
        self.stdout.write(f"Restored {archive}: {sum(manifest.rows.values())} rows in {len(manifest.rows)} tables and "
                          f"{len(manifest.files)} files, every count and hash checked (made {manifest.created_at}).")
