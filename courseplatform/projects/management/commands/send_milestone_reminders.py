from django.core.management.base import BaseCommand, CommandError

from courseplatform.courses.models import Course
from courseplatform.projects.reminders import WINDOW, send_reminders


class Command(BaseCommand):
    help = ("E-mail every group that has not delivered a milestone due within the next 48 hours "
            "(once per group and milestone). Safe to run from cron as often as you like.")

    def add_arguments(self, parser):
        parser.add_argument("--course", help="only this course (slug)")
        parser.add_argument("--dry-run", action="store_true", help="list who would be reminded, send nothing")

    def handle(self, *args, course=None, dry_run=False, **options):
        c = None
        if course:
            c = Course.objects.filter(slug=course).first()
            if c is None:
                raise CommandError(f"No course with slug {course!r}.")
        run = send_reminders(window=WINDOW, course=c, dry_run=dry_run)
        verb = "would remind" if dry_run else "reminded"
        for milestone, group, emails in run.sent:
            self.stdout.write(f"{verb} {group.name} ({', '.join(emails)}) about {milestone.title} "
                              f"[{milestone.course.slug}]")
        self.stdout.write(self.style.SUCCESS(
            f"{len(run.sent)} reminder(s) {'to send' if dry_run else 'sent'}; {run.skipped} group(s) skipped."))
