"""`manage.py backup [--output FILE]`: one archive with the database, the uploaded files and the
pack store, consistent while the site runs (courseplatform/ops/backup.py says how)."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from courseplatform.ops.backup import BackupError, create_backup


class Command(BaseCommand):
    help = "Back up the database, uploaded files and the pack store into one .tar.gz (safe while the site runs)."

    def add_arguments(self, parser):
        parser.add_argument("--output", "-o", type=Path, default=None,
                            help="archive to write (default: BACKUP_DIR/courseplatform-<UTC time>.tar.gz)")

    def handle(self, *args, output: Path | None = None, **options):
        if output is None:
            stamp = datetime.utcnow().strftime("%Y%m%d-%H%M%S")
            output = Path(settings.BACKUP_DIR) / f"courseplatform-{stamp}.tar.gz"
        try:
            manifest = create_backup(output)
        except (BackupError, OSError) as exc:
            raise CommandError(f"backup failed: {exc}") from exc
        size = output.stat().st_size
        self.stdout.write(f"Backup written: {output} ({size / 1e6:.1f} MB; {sum(manifest.rows.values())} rows in "
                          f"{len(manifest.rows)} tables, {len(manifest.files)} files)")
