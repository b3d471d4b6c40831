"""`manage.py sync_course <root> [--course SLUG]`: every app's sync hook loads the course content."""
from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from courseplatform.core.hooks import PartsFailed, hooks
from courseplatform.courses import demo_data
from courseplatform.courses.models import Course


class Command(BaseCommand):
    help = "Load or update the course content (assignment packs, quiz banks, milestones) from a folder."

    def add_arguments(self, parser):
        parser.add_argument("root", help="content folder, normally assignments/")
        parser.add_argument("--course", help="course slug (default: the only course, or the demo course)")

    def handle(self, root, course=None, **options):
        root_path = Path(root).resolve()
        if not root_path.is_dir():
            raise CommandError(f"{root} is not a folder.")
        target = self._course(course)
        self.stdout.write(f"Syncing {root_path} into {target.slug!r}")
        ran, broken = 0, []
        for hook in hooks("sync"):
            app = hook.module.rsplit(".", 1)[0]
            self.stdout.write(f"- {app}")
            try:
                hook.function(target, root_path, self.stdout)
            except CommandError:
                raise
            except PartsFailed as exc:  # the app synced the rest; its broken parts are logged
                broken += [f"{app}: {problem}" for problem in exc.problems]
            except Exception as exc:
                raise CommandError(f"{app} failed to sync: {exc}") from exc
            ran += 1
        if broken:
            raise CommandError(f"{len(broken)} part(s) could not be synced (the rest was): " + "; ".join(broken))
        self.stdout.write(self.style.SUCCESS(f"Done ({ran} app{'s' if ran != 1 else ''})."))

    def _course(self, slug):
        if slug:
            try:
                return Course.objects.get(slug=slug)
            except Course.DoesNotExist:
                raise CommandError(f"No course with slug {slug!r}.") from None
        courses = list(Course.objects.all())
        if len(courses) == 1:
            return courses[0]
        demo = next((c for c in courses if c.slug == demo_data.COURSE["slug"]), None)
        if demo:
            return demo
        if not courses:
            raise CommandError("There is no course yet: create one (admin) or run load_demo.")
        raise CommandError("Several courses exist; choose one with --course " + "|".join(c.slug for c in courses))
