from django.core.management.base import BaseCommand

from courseplatform.submissions import services


class Command(BaseCommand):
    help = (
        "Requeue submissions stuck in `running` longer than their pack's wall limit plus a margin, "
        "or `queued` longer than --queued-after seconds (a lost message). Celery beat runs the same "
        "check every 2 minutes (task submissions.sweep_stuck)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--margin", type=int, default=120, help="Seconds beyond the pack's wall limit (default 120).")
        parser.add_argument("--queued-after", type=int, default=3600, help="Seconds a queued submission may wait (default 3600).")
        parser.add_argument("--dry-run", action="store_true", help="Only list them.")

    def handle(self, *args, margin, queued_after, dry_run, **options):
        stuck = services.find_stuck(margin_s=margin, queued_after_s=queued_after).select_related("assignment", "student")
        for s in stuck:
            self.stdout.write(f"  #{s.pk} {s.assignment.slug} {s.student.username} {s.state} since {s.started_at or s.queued_at}")
        if dry_run:
            self.stdout.write(f"{stuck.count()} stuck submission(s) (dry run: nothing changed).")
            return
        n = services.regrade(stuck, reset_deliveries=False)
        self.stdout.write(self.style.SUCCESS(f"Requeued {n} stuck submission(s)."))
