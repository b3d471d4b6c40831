"""The README's role table ("Roles and people", "Who may do what"), performed (issue 28, item 7).

Each row of the table names an action, its route (and the POST field that picks the action where one
endpoint does several) and who may do it. For each row, every role performs the action over HTTP:
a role the table allows must get through (any answer but 403/404/405/5xx: a form error is fine, the
role check passed); a role the table refuses must get 403 (or 404 where the route is about somebody
else's attempt or group). A state-changing route that is not in the table fails the suite, so the
table, the views and this test move together.
"""
from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from django.test import Client

from .routes import course_routes, get_only, post_only, touches_owned_object, url_for

pytestmark = pytest.mark.django_db

README = Path(__file__).resolve().parents[2] / "README.md"
ROLES = ("student", "ta", "instructor")


def role_table() -> list[dict]:
    text = README.read_text(encoding="utf-8")
    m = re.search(r"<!-- role-table: start -->(.*?)<!-- role-table: end -->", text, re.S)
    assert m, "README.md lost its role table (<!-- role-table: start --> ... <!-- role-table: end -->)"
    rows = []
    for line in m.group(1).strip().splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        assert len(cells) == 5, f"a role-table row needs 5 cells: {line}"
        action, route_cell, *who = cells
        codes = re.findall(r"`([^`]+)`", route_cell)
        assert codes, f"no route in {line}"
        fields = dict(c.split("=", 1) for c in codes[1:])
        for cell in who:
            assert cell in ("yes", "own", "—"), f"{action}: {cell!r} (use yes, own or —)"
        rows.append({"action": action, "route": codes[0], "fields": fields, "who": dict(zip(ROLES, who))})
    return rows


ROWS = role_table()
ROUTES = {str(r): r for r in course_routes()}


def _view_source(route) -> str:
    return inspect.getsource(inspect.unwrap(route.callback))


def _handles_post(route) -> bool:
    if post_only(route.callback):
        return True
    if get_only(route.callback):
        return False
    src = _view_source(route)
    return "request.POST" in src or "request.FILES" in src or 'request.method == "POST"' in src


def _actions(route) -> set[str]:
    """The values of the POST field `action` that a view dispatches on."""
    found = set()
    for m in re.finditer(r"\baction (?:==|in) (\([^)]*\)|\"[^\"]*\")", _view_source(route)):
        found |= set(re.findall(r'"([^"]+)"', m.group(1)))
    return found


def test_every_state_changing_route_and_action_is_in_the_table():
    listed = {row["route"] for row in ROWS}
    unknown = sorted(row["route"] for row in ROWS if row["route"] not in ROUTES)
    assert not unknown, f"the README's role table names routes that do not exist: {unknown}"
    missing = sorted(name for name, r in ROUTES.items() if _handles_post(r) and name not in listed)
    assert not missing, f"state-changing routes missing from the README's role table: {missing}"
    for name in listed:
        actions = _actions(ROUTES[name])
        rows = {row["fields"].get("action") for row in ROWS if row["route"] == name}
        assert actions <= rows, f"{name}: actions missing from the README's role table: {sorted(actions - rows)}"
    assert len(ROWS) >= 40 and _actions(ROUTES["projects:groups_action"]) >= {"create", "delete", "move", "unlock"}


def _data(row, w, who: str) -> dict:
    """What a person filling the form would send, pointing at the objects of the world."""
    own = w.alice if who == "student" else w.bob
    group = w.group_a if who == "student" else w.group_b
    data = {"name": "Renamed team", "student": own.pk, "group": group.pk, "scope": "all", "submission": w.bob_sub.pk,
            "title": "Lecture 2", "date": "2030-01-10", "code": group.join_code, "text": "x",
            "repo_url": "https://example.org/repo", "score": "5", "feedback": "ok"}
    if row["fields"].get("action") == "move":
        data.update(student=w.carol.pk, group=w.group_a.pk)
    data.update(row["fields"])
    return data


@pytest.mark.parametrize("row", ROWS, ids=[f"{r['route']}{'-' + r['fields']['action'] if 'action' in r['fields'] else ''}"
                                           for r in ROWS])
def test_the_role_table_is_what_the_site_does(world, row, settings):
    settings.PACK_UPLOADS = "instructors"  # the table's "also needs PACK_UPLOADS"
    route = ROUTES[row["route"]]
    users = {"student": world.alice, "ta": world.ta, "instructor": world.instructor}
    # Refusals first: an allowed action may change what a later request meets (a group deleted).
    order = sorted(ROLES, key=lambda who: row["who"][who] != "—")
    wrong = []
    for who in order:
        c = Client(raise_request_exception=False)
        c.force_login(users[who])
        url = url_for(route, world, "alice" if who == "student" else "bob")
        r = c.post(url, _data(row, world, who))
        allowed = row["who"][who] != "—"
        if allowed and (r.status_code in (403, 404, 405) or r.status_code >= 500):
            wrong.append(f"{who} may ({row['who'][who]}) but got {r.status_code}")
        refused_ok = (403, 404) if touches_owned_object(route) or route.namespace == "quizzes" else (403,)
        if not allowed and r.status_code not in refused_ok:
            wrong.append(f"{who} may not, but got {r.status_code}")
    assert not wrong, f"{row['action']} ({row['route']} {row['fields']}): " + "; ".join(wrong)


def test_a_ta_sees_no_group_controls_an_instructor_has(world):
    """The groups page shows a TA the groups and their history, not buttons the TA may not use."""
    from django.urls import reverse

    url = reverse("projects:groups", args=[world.course.slug])
    action = reverse("projects:groups_action", args=[world.course.slug]).encode()
    pages = {}
    for who in ("ta", "instructor"):
        c = Client()
        c.force_login(getattr(world, who))
        r = c.get(url)
        assert r.status_code == 200
        pages[who] = r.content
    assert action in pages["instructor"] and b"Unlock groups" in pages["instructor"] or b"Lock groups now" in pages["instructor"]
    assert action not in pages["ta"], "the TA's groups page posts to the instructor's group actions"
    for label in (b"Lock groups now", b"Unlock groups", b">Move<", b">Delete<", b">Create<"):
        assert label not in pages["ta"], label
    assert b"Team Bob" in pages["ta"]
