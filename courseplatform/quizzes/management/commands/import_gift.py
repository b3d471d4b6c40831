from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from courseplatform.courses.models import Course
from courseplatform.quizzes.gift import GiftImportErrors
from courseplatform.quizzes.importing import import_gift


class Command(BaseCommand):
    help = ("Import a Moodle GIFT file as a quiz of a course. Questions it cannot take are skipped and listed "
            "with their lines; the rest is imported.")

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--course", required=True, help="course slug")
        parser.add_argument("--quiz", required=True, help="quiz slug (created, or updated if it came from GIFT)")
        parser.add_argument("--title", default="", help="quiz title (default: from the slug)")
        parser.add_argument("--points", type=float, default=1.0, help="points per question")

    def handle(self, *args, **opts):
        try:
            course = Course.objects.get(slug=opts["course"])
        except Course.DoesNotExist:
            raise CommandError(f"no course {opts['course']!r}") from None
        try:
            text = opts["file"].read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read {opts['file']}: {exc}") from None
        try:
            quiz, counts = import_gift(course, text, slug=opts["quiz"], title=opts["title"], points=opts["points"],
                                       source_path=str(opts["file"]))
        except GiftImportErrors as exc:
            for err in exc.errors:
                self.stderr.write(f"{opts['file']}: {err}")
            raise CommandError(f"{len(exc.errors)} error(s); nothing was imported") from None
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        for err in counts["skipped"]:
            self.stderr.write(self.style.WARNING(f"{opts['file']}: skipped {err.describe()}"))
        self.stdout.write(self.style.SUCCESS(
            f"{quiz.slug}: {counts['new']} new, {counts['changed']} changed, {counts['same']} unchanged, "
            f"{counts['removed']} removed questions"
            + (f"; {len(counts['skipped'])} skipped (listed above with their lines)" if counts["skipped"] else "")))
