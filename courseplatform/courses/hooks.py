"""Discovery of per-app hook modules, so apps extend the course without editing each other.

Each app under courseplatform/ may provide:
  dashboard.py  panels(request, course, membership) -> list[dict(title, template, context, order)]
  demo.py       load(course, people, stdout)            (called by `manage.py load_demo`)
  sync.py       sync(course, root: Path, stdout)         (called by `manage.py sync_course`)
  gradebook.py  items(course) -> list[GradeItem]         (collected by the gradebook)
"""
from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from django.conf import settings


def hook_modules(name: str) -> list[ModuleType]:
    """The `<app>.<name>` modules of our apps, in INSTALLED_APPS order."""
    found = []
    for app in settings.INSTALLED_APPS:
        if not app.startswith("courseplatform."):
            continue
        module_name = f"{app}.{name}"
        if importlib.util.find_spec(module_name) is None:
            continue
        found.append(importlib.import_module(module_name))
    return found
