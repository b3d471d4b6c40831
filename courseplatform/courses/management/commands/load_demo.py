"""`manage.py load_demo`: the demo course with its people, then every app's demo hook. Idempotent.

Dates follow today: the demo course's plan (lectures, deadlines, milestones) is the real course's
moved by whole weeks (demo_data.shift_weeks) so that today falls inside it; each hook gets the
number of weeks as people["shift_weeks"]. The logins are printed with --logins (`make run`'s
launcher, courseplatform/devserver.py, prints them once when the site is up)."""
from __future__ import annotations

import time
import traceback

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from courseplatform.core.hooks import hooks
from courseplatform.courses import demo_data
from courseplatform.courses.models import Course, Membership, Role


class Command(BaseCommand):
    help = "Create (or complete) the demo course 'Deep Dive into LLMs' with demo people and content."

    def add_arguments(self, parser):
        parser.add_argument("--logins", action="store_true", help="print the demo logins at the end")

    def handle(self, *args, **options):
        User = get_user_model()
        weeks = demo_data.shift_weeks(timezone.now())

        def person(entry, role):
            username, password, first, last = entry
            user, created = User.objects.get_or_create(
                username=username,
                defaults={"first_name": first, "last_name": last, "email": f"{username}@demo.courseplatform.test"},
            )
            if created:
                user.set_password(password)  # demo passwords are set directly, not validated
                user.save(update_fields=["password"])
            Membership.objects.get_or_create(course=course, user=user, defaults={"role": role})
            return user

        with transaction.atomic():
            course, created = Course.objects.get_or_create(slug=demo_data.COURSE["slug"], defaults=demo_data.COURSE)
            people = {
                "instructor": person(demo_data.INSTRUCTOR, Role.INSTRUCTOR),
                "ta": person(demo_data.TA, Role.TA),
                "students": [person(s, Role.STUDENT) for s in demo_data.STUDENTS],
                "shift_weeks": weeks,
            }
        self.stdout.write(f"Demo course {course.slug!r}: {'created' if created else 'already there'}; its plan "
                          f"moved by {weeks} week(s) so that today falls inside it.")

        failed = []
        for hook in hooks("demo"):
            app = hook.module.rsplit(".", 1)[0]
            # A progress line before each app (grading the demo submissions takes a while).
            self.stdout.write(f"Demo data of {app}...")
            self.stdout.flush()
            started = time.monotonic()
            try:
                with transaction.atomic():
                    hook.function(course, people, self.stdout)
            except Exception:
                failed.append(app)
                self.stderr.write(f"Demo data of {app} failed (rolled back):\n{traceback.format_exc()}")
            else:
                self.stdout.write(f"  done in {time.monotonic() - started:.1f} s")
        if options["logins"]:
            self.stdout.write("")
            self.stdout.write(demo_data.logins_text())
        if failed:
            raise CommandError(f"Demo data failed for: {', '.join(failed)} (the rest was loaded).")
