"""The hook registry: apps extend the course without editing each other.

Each app under courseplatform/ may provide these modules, each defining one function:

  dashboard.py  panels(request, course, membership) -> list[Panel]     (the course dashboard)
  gradebook.py  items(course) -> list[GradeItem]                      (collected by the gradebook app)
  demo.py       load(course, people, stdout)                          (`manage.py load_demo`)
  sync.py       sync(course, root: Path, stdout)                      (`manage.py sync_course`)

``CoreConfig.ready()`` calls :func:`discover` once: Django's ``autodiscover_modules`` imports the
modules and the registry keeps one typed :class:`Hook` per app and kind, in INSTALLED_APPS order.
The system checks below (``manage.py check``, run by every test session) refuse a hook module
without its function, or whose function takes other parameters.

A hook that raises fails loudly where someone can fix it (``settings.HOOKS_FAIL_LOUDLY``: on under
DEBUG and in the tests); in production a broken dashboard panel is logged and shown as "could not be
loaded", and a broken gradebook provider is logged and listed among the gradebook's errors. A
sync hook with a broken part (an invalid pack or bank file) syncs the rest, logs the part with its
cause and raises PartsFailed, so that ``manage.py sync_course`` exits non-zero.
"""
from __future__ import annotations

import inspect
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.apps import apps
from django.conf import settings
from django.core import checks
from django.template.loader import render_to_string
from django.utils.module_loading import autodiscover_modules

log = logging.getLogger(__name__)

# kind (module name) -> (function name, its parameters)
KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "dashboard": ("panels", ("request", "course", "membership")),
    "gradebook": ("items", ("course",)),
    "demo": ("load", ("course", "people", "stdout")),
    "sync": ("sync", ("course", "root", "stdout")),
}


@dataclass(frozen=True)
class Panel:
    """One dashboard panel: ``template`` is rendered with course, membership, request and ``context``."""
    title: str
    template: str
    context: dict = field(default_factory=dict)
    order: int = 100
    wide: bool = False


@dataclass
class GradeItem:
    """The unit the gradebook is made of: a gradebook.py hook returns these from items(course)."""
    key: str  # unique within the course, stable, e.g. "assignment:attention", "quiz:12", "milestone:3"
    title: str
    category: str  # "assignments" | "quizzes" | "milestones" | "attendance"
    max_points: float
    scores: dict[int, float | None] = field(default_factory=dict)  # user id -> points (None: nothing yet)
    due: datetime | None = None
    url: str | None = None  # the staff page for this item
    notes: dict[int, str] = field(default_factory=dict)  # user id -> short note ("late -10%", "excused")
    # Optional: user id -> a flag shown next to the student's name (e.g. "4 absences, more than 2 allowed").
    flags: dict[int, str] = field(default_factory=dict)
    # Optional: user ids whose work is in but not graded yet (a delivered milestone, a submission in the
    # queue). Shown as "pending" and left out of the percentages, never counted as 0.
    pending: set[int] = field(default_factory=set)
    # Optional: user id -> that student's own maximum (e.g. attendance counts only the sessions held
    # since the student enrolled). A maximum of 0 leaves the item out of the student's percentages.
    max_points_for: dict[int, float] = field(default_factory=dict)

    def max_for(self, user_id: int) -> float:
        return float(self.max_points_for.get(user_id, self.max_points) or 0.0)


@dataclass(frozen=True)
class RenderedPanel:
    title: str
    html: str
    order: int = 100
    wide: bool = False
    error: str = ""  # the app whose panel failed (production only), shown instead of the panel


@dataclass(frozen=True)
class Hook:
    app: str            # the app's label, e.g. "submissions"
    kind: str           # a key of KINDS
    module: str         # e.g. "courseplatform.submissions.dashboard"
    function: Callable | None


_registry: dict[str, list[Hook]] = {}


def discover() -> None:
    """Import every app's hook modules and register them (CoreConfig.ready())."""
    autodiscover_modules(*KINDS)
    _registry.clear()
    for config in apps.get_app_configs():
        if not config.name.startswith("courseplatform."):
            continue
        for kind, (function, _) in KINDS.items():
            module = sys.modules.get(f"{config.name}.{kind}")
            if module is not None:
                _registry.setdefault(kind, []).append(
                    Hook(config.label, kind, module.__name__, getattr(module, function, None)))


def hooks(kind: str) -> list[Hook]:
    """The registered hooks of ``kind`` whose function is usable, in INSTALLED_APPS order."""
    return [h for h in _registry.get(kind, []) if callable(h.function)]


def failed(hook: Hook) -> None:
    """Call from an ``except`` block around a hook: re-raises where the failure must be seen
    (HOOKS_FAIL_LOUDLY), else logs it so the caller can leave the hook's part out."""
    if settings.HOOKS_FAIL_LOUDLY:
        raise  # noqa: PLE0704 - re-raises the exception being handled by the caller
    log.exception("%s hook of %s failed", hook.kind, hook.app)


class PartsFailed(Exception):
    """A hook did what it could, but some of its parts were broken (a sync hook: an invalid pack or
    bank file). Each part was logged with its cause; ``result`` is what the hook would have
    returned. ``manage.py sync_course`` goes on with the other apps, then exits non-zero."""

    def __init__(self, problems: list[str], result=None):
        super().__init__("; ".join(problems))
        self.problems, self.result = list(problems), result


def part_failed(what: str, exc: BaseException, problems: list[str]) -> None:
    """Record a broken part of a hook's work: logged with its cause (traceback), and listed in
    ``problems`` for the PartsFailed the hook raises once it has done the rest."""
    log.error("%s: %s: %s", what, type(exc).__name__, exc, exc_info=exc)
    problems.append(f"{what}: {type(exc).__name__}: {exc}")


def render_panels(request, course, membership) -> list[RenderedPanel]:
    """Every app's dashboard panels for this member, rendered and sorted by (order, title)."""
    out = []
    for hook in hooks("dashboard"):
        try:
            panels = hook.function(request, course, membership) or []
            bad = [p for p in panels if not isinstance(p, Panel)]
            if bad:
                raise TypeError(f"{hook.module}.panels returned {type(bad[0]).__name__}, not hooks.Panel")
        except Exception:
            failed(hook)
            out.append(RenderedPanel(title="Unavailable", html="", order=999, error=hook.app))
            continue
        for panel in panels:
            ctx = {"course": course, "membership": membership, "request": request, **panel.context}
            try:
                html = render_to_string(panel.template, ctx, request=request)
            except Exception:
                failed(hook)
                out.append(RenderedPanel(title=panel.title, html="", order=panel.order, error=hook.app))
                continue
            out.append(RenderedPanel(title=panel.title, html=html, order=panel.order, wide=panel.wide))
    out.sort(key=lambda p: (p.order, p.title))
    return out


@checks.register()
def check_hooks(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """A hook module must define its function with the documented parameters."""
    errors = []
    for kind, registered in _registry.items():
        function, params = KINDS[kind]
        for hook in registered:
            if not callable(hook.function):
                errors.append(checks.Error(
                    f"{hook.module} defines no function {function}()",
                    hint=f"A {kind}.py hook module defines {function}({', '.join(params)}); see courseplatform/core/hooks.py.",
                    obj=hook.module, id="courseplatform.E001"))
                continue
            try:
                inspect.signature(hook.function).bind(*params)
            except TypeError:
                errors.append(checks.Error(
                    f"{hook.module}.{function}{inspect.signature(hook.function)} cannot be called as "
                    f"{function}({', '.join(params)})",
                    obj=hook.module, id="courseplatform.E002"))
    return errors
