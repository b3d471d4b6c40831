from django.apps import AppConfig


class LiveConfig(AppConfig):
    """Live quizzes in the lecture hall: paced by the instructor, answered on phones, shown on the
    projector. Push goes over WebSockets (Django Channels, courseplatform/asgi.py); answers are plain
    POSTs stored in the database before the phone says "received"."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "courseplatform.live"
