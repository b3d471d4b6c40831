from pathlib import Path

from django.apps import AppConfig
from django.conf import settings


class CoreConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "courseplatform.core"

    def ready(self):
        from . import hooks  # imports the apps' models (via the hook modules), so only once the registry is ready

        hooks.discover()
        make_folders()


def make_folders() -> None:
    """The local folders the settings name, created once Django is set up (importing the settings
    creates nothing): the SQLite database's folder, STATIC_ROOT (whitenoise warns when it is
    missing) and the filesystem broker's queue folders (local runs without Redis)."""
    db = settings.DATABASES["default"]
    folders = [Path(settings.STATIC_ROOT)]
    if db["ENGINE"].endswith("sqlite3") and str(db["NAME"]) != ":memory:":
        folders.append(Path(db["NAME"]).parent)
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
        folders += [Path(options[k]) for k in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder") if k in options]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
