"""The Celery application. Broker from CELERY_BROKER_URL (settings); tasks autodiscovered from the apps."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "courseplatform.settings")

app = Celery("courseplatform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
