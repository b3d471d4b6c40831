"""Load the course plan (groups settings and milestones) from <root>/milestones.toml, idempotently.

Called by `manage.py sync_course <root>` (root is normally assignments/) and by demo.py.
Milestones are matched by slug and updated in place; rubric criteria by position. A criterion
dropped from the file is deleted unless grades already use it (then it is kept and reported).
Milestones missing from the file are left alone (they may have been created in the web pages).
The [groups] rules (max size, self-formation, lock at a milestone's deadline) apply until an
instructor changes the group settings or locks/unlocks groups in the web pages.
"""
from __future__ import annotations

import tomllib
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from .models import Deliverable, GroupEvent, Milestone, ProjectSettings, RubricCriterion

PLAN_FILE = "milestones.toml"


class PlanError(ValueError):
    pass


def _aware(value, slug) -> datetime:
    if not isinstance(value, datetime):
        raise PlanError(f"milestone {slug!r}: due must be a TOML date-time, e.g. 2026-11-06T23:59:00+01:00")
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    return value


def parse(path: Path) -> dict:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise PlanError(f"{path}: {e}") from e
    milestones = data.get("milestone", [])
    seen = set()
    for i, m in enumerate(milestones):
        slug = m.get("slug")
        if not slug or not m.get("title") or "due" not in m:
            raise PlanError(f"{path}: milestone #{i + 1} needs slug, title and due")
        if slug in seen:
            raise PlanError(f"{path}: duplicate milestone slug {slug!r}")
        seen.add(slug)
        if m.get("deliverable", "file") not in Deliverable.values:
            raise PlanError(f"milestone {slug!r}: deliverable must be one of {', '.join(Deliverable.values)}")
        m["due"] = _aware(m["due"], slug)
        for c in m.get("rubric", []):
            if not c.get("title") or float(c.get("points", -1)) < 0:
                raise PlanError(f"milestone {slug!r}: each rubric criterion needs a title and points >= 0")
    return data


def _set(obj, values: dict) -> bool:
    changed = False
    for k, v in values.items():
        if getattr(obj, k) != v:
            setattr(obj, k, v)
            changed = True
    return changed


@transaction.atomic
def apply(course, data: dict, stdout=None) -> dict:
    """Returns {slug: (milestone, changed)}."""
    by_slug = {}
    for order, m in enumerate(data.get("milestone", [])):
        values = {
            "title": m["title"], "due": m["due"], "instructions": m.get("instructions", "").strip(),
            "deliverable": m.get("deliverable", "file"), "file_types": m.get("file_types", "pdf,md"),
            "allow_late": bool(m.get("allow_late", False)), "points": Decimal(str(m.get("points", 0))).quantize(Decimal("0.01")),
            "min_sources": int(m.get("min_sources", 0)), "order": order,
        }
        milestone = Milestone.objects.filter(course=course, slug=m["slug"]).first()
        if milestone is None:
            milestone = Milestone.objects.create(course=course, slug=m["slug"], **values)
            changed = True
        else:
            changed = _set(milestone, values)
            if changed:
                milestone.save()
        existing = list(milestone.criteria.order_by("order", "id"))
        for i, c in enumerate(m.get("rubric", [])):
            cvalues = {"title": c["title"], "points": Decimal(str(c["points"])).quantize(Decimal("0.01")),
                       "description": c.get("description", "").strip(), "order": i}
            if i < len(existing):
                if _set(existing[i], cvalues):
                    existing[i].save()
                    changed = True
            else:
                RubricCriterion.objects.create(milestone=milestone, **cvalues)
                changed = True
        for extra in existing[len(m.get("rubric", [])):]:
            if extra.scores.exists():
                if stdout:
                    stdout.write(f"  kept criterion {extra.title!r} of {milestone.slug}: grades use it")
                continue
            extra.delete()
            changed = True
        by_slug[m["slug"]] = (milestone, changed)
    groups = data.get("groups", {})
    # The plan's group rules apply until an instructor changes them in the web pages (history).
    touched = GroupEvent.objects.filter(
        course=course, action__in=[GroupEvent.Action.SETTINGS, GroupEvent.Action.UNLOCKED, GroupEvent.Action.LOCKED]
    ).exists()
    if groups and not touched:
        cfg = ProjectSettings.for_course(course)
        gvalues = {}
        if "max_group_size" in groups:
            gvalues["max_group_size"] = int(groups["max_group_size"])
        if "students_form_groups" in groups:
            gvalues["students_form_groups"] = bool(groups["students_form_groups"])
        lock_after = groups.get("lock_after")
        if lock_after and lock_after in by_slug:
            gvalues["lock_at"] = by_slug[lock_after][0].due
        if _set(cfg, gvalues):
            cfg.save()
    return by_slug


def sync(course, root: Path, stdout=None) -> None:
    path = Path(root) / PLAN_FILE
    if not path.exists():
        if stdout:
            stdout.write(f"projects: no {PLAN_FILE} in {root}, nothing to load")
        return
    data = parse(path)
    before = set(Milestone.objects.filter(course=course).values_list("slug", flat=True))
    result = apply(course, data, stdout)
    created = [s for s in result if s not in before]
    updated = [s for s, (_, changed) in result.items() if changed and s in before]
    if stdout:
        stdout.write(f"projects: {len(result)} milestones in {path.name} "
                     f"({len(created)} created, {len(updated)} updated, "
                     f"{len(result) - len(created) - len(updated)} unchanged)")
