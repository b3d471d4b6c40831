from django.core.management.base import BaseCommand

from courseplatform.quizzes.services import close_overdue


class Command(BaseCommand):
    help = "Close quiz attempts past their deadline (also run every minute by celery beat)."

    def handle(self, *args, **opts):
        n = close_overdue()
        self.stdout.write(f"closed {n} overdue attempt(s)")
