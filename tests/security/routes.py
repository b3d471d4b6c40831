"""Every URL of the site, found by walking the resolver, with its role rule read from the view itself.

A course route is any pattern with a `course_slug` argument. Its view must be wrapped by
`course_role_required`; the roles it allows are read from that wrapper's closure, so a new
view is classified (and tested) without anyone editing a list.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver, reverse

from courseplatform.courses.models import Role


@dataclass(frozen=True)
class Route:
    name: str  # "namespace:name" (or the bare name)
    pattern: str  # the full route, for messages
    args: tuple[str, ...]  # keyword arguments of the pattern
    callback: object

    @property
    def namespace(self) -> str:
        return self.name.split(":")[0] if ":" in self.name else ""

    @property
    def is_course_route(self) -> bool:
        return "course_slug" in self.args

    def __str__(self) -> str:
        return self.name


def _walk(patterns, prefix="", namespace=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            ns = namespace
            if p.namespace:
                ns = f"{namespace}:{p.namespace}" if namespace else p.namespace
            yield from _walk(p.url_patterns, prefix + str(p.pattern), ns)
        elif isinstance(p, URLPattern):
            full = prefix + str(p.pattern)
            name = p.name or ""
            qual = f"{namespace}:{name}" if namespace and name else name
            args = tuple(sorted(set(_route_args(full))))
            yield Route(qual or full, full, args, p.callback)


def _route_args(full: str):
    import re

    return re.findall(r"<(?:\w+:)?(\w+)>", full)


def all_routes() -> list[Route]:
    return list(_walk(get_resolver().url_patterns))


def course_routes() -> list[Route]:
    return [r for r in all_routes() if r.is_course_route]


def _chain(fn):
    seen = set()
    while fn is not None and id(fn) not in seen:
        seen.add(id(fn))
        yield fn
        fn = getattr(fn, "__wrapped__", None)


def allowed_roles(callback) -> tuple[str, ...] | None:
    """The roles passed to course_role_required on this view (None: the view has no such wrapper)."""
    for fn in _chain(callback):
        if getattr(fn, "__closure__", None) is None:
            continue
        try:
            nonlocals = inspect.getclosurevars(fn).nonlocals
        except (TypeError, ValueError):
            continue
        allowed = nonlocals.get("allowed")
        if isinstance(allowed, tuple) and "view" in nonlocals and all(isinstance(a, str) for a in allowed):
            return tuple(str(a) for a in allowed)
    return None


def post_only(callback) -> bool:
    """Wrapped by require_POST (or require_http_methods(["POST"]))."""
    for fn in _chain(callback):
        if getattr(fn, "__closure__", None) is None:
            continue
        try:
            methods = inspect.getclosurevars(fn).nonlocals.get("request_method_list")
        except (TypeError, ValueError):
            continue
        if methods is not None:
            return list(methods) == ["POST"]
    return False


def get_only(callback) -> bool:
    for fn in _chain(callback):
        if getattr(fn, "__closure__", None) is None:
            continue
        try:
            methods = inspect.getclosurevars(fn).nonlocals.get("request_method_list")
        except (TypeError, ValueError):
            continue
        if methods is not None:
            return "POST" not in methods
    return False


def staff_only(route: Route) -> bool:
    roles = allowed_roles(route.callback)
    return roles is not None and Role.STUDENT not in roles


def student_only(route: Route) -> bool:
    roles = allowed_roles(route.callback)
    return roles is not None and set(roles) == {Role.STUDENT}


# The kwargs of each app's routes, pointing at objects of the victim (bob) or the course.
def kwargs_for(route: Route, w, owner: str = "bob") -> dict:
    own = w.alice if owner == "alice" else w.bob
    ns = route.namespace
    table = {
        "course_slug": w.course.slug,
        "slug": w.assignment.slug,
        "kind": "py",
        "index": 1 if "notebook" in route.name else 0,  # the world's artifacts: [png, executed notebook]
        "quiz_slug": w.quiz.slug,
        "question_id": w.question.pk,
        "user_id": own.pk,
        "live_id": w.live.pk,
    }
    if ns == "submissions":
        table["pk"] = (w.alice_sub if owner == "alice" else w.bob_sub).pk
    elif ns == "projects":
        table["pk"] = w.milestone.pk
        table["group_id"] = (w.group_a if owner == "alice" else w.group_b).pk
        table["version_id"] = (w.alice_version if owner == "alice" else w.bob_version).pk
    elif ns == "quizzes":
        table["attempt_id"] = (w.alice_attempt if owner == "alice" else w.bob_attempt).pk
        table["item_id"] = (w.alice_item if owner == "alice" else w.bob_item).pk
        table["check_id"] = (w.alice_check if owner == "alice" else w.bob_check).pk
    elif ns == "similarity":  # staff only: a pair of the world's similarity check (Alice and Bob)
        table["pair_id"] = w.sim_pair.pk
    elif ns == "courses":
        table["member_id"] = (w.alice_membership if owner == "alice" else w.bob_membership).pk
        table["session_id"] = w.session.pk
    missing = [a for a in route.args if a not in table]
    assert not missing, f"{route}: tests/security/routes.py does not know how to fill {missing}; add them"
    return {a: table[a] for a in route.args}


def url_for(route: Route, w, owner: str = "bob", course_slug: str | None = None) -> str:
    kw = kwargs_for(route, w, owner)
    if course_slug:
        kw["course_slug"] = course_slug
    return reverse(route.name, kwargs=kw)


# Routes on the victim's own objects: what a classmate must never open.
OWNED_ARGS = {
    "submissions": {"pk"},
    "quizzes": {"attempt_id", "item_id", "check_id"},
    "projects": {"group_id", "version_id"},
    "courses": {"user_id", "member_id"},
    "gradebook": set(),
    "similarity": set(),  # every similarity route is staff-only (tests/similarity/test_views.py)
    "live": set(),  # a live quiz belongs to the course; a student's answers are reached only as themselves
}


def touches_owned_object(route: Route) -> bool:
    return bool(set(route.args) & OWNED_ARGS.get(route.namespace, set()))
