"""`manage.py load_demo`: the demo course with its people, then every app's demo hook. Idempotent."""
from __future__ import annotations

import traceback

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from courseplatform.courses import demo_data
from courseplatform.courses.hooks import hooks
from courseplatform.courses.models import Course, Membership, Role


class Command(BaseCommand):
    help = "Create (or complete) the demo course 'Deep Dive into LLMs' with demo people and content."

    def handle(self, *args, **options):
        User = get_user_model()

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
            }
        self.stdout.write(f"Demo course {course.slug!r}: {'created' if created else 'already there'}.")

        failed = []
        for hook in hooks("demo"):
            app = hook.module.rsplit(".", 1)[0]
            try:
                with transaction.atomic():
                    hook.function(course, people, self.stdout)
            except Exception:
                failed.append(app)
                self.stderr.write(f"Demo data of {app} failed (rolled back):\n{traceback.format_exc()}")
        self.stdout.write("")
        self.stdout.write(demo_data.logins_text())
        if failed:
            raise CommandError(f"Demo data failed for: {', '.join(failed)} (the rest was loaded).")
