"""Load assignment packs into a course: `manage.py sync_course assignments/`.

For each `<root>/<slug>/assignment.toml` the pack is validated by the engine
(grader.authoring.pack.load_pack), copied into trusted storage at PACK_STORE/<slug>/<hash>/ (a new
folder per pack version, written once: a pack change is explicit, and a regrade after a
sync uses the new version), and its Assignment row is created or updated. Running it
twice changes nothing. Deadlines and policies the instructor set are kept, unless the
pack's assignment.toml sets them (`due`, `opens`, [late]).
"""
from __future__ import annotations

import sys
import tomllib
from datetime import datetime, time
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from courseplatform.core import hooks, markdown
from courseplatform.grading.packstore import store_pack
from grader.api import PackError, load_pack, pack_hash

from .models import Assignment, LatePolicy


class PackInvalid(Exception):
    pass


def render_handout(text: str) -> str:
    """The handout's Markdown, with its formulas kept intact for KaTeX (detail.html loads it)."""
    return markdown.render(text or "", "handout")


def load_meta(pack_dir: Path) -> tuple[dict, str]:
    """(meta, handout markdown), validated by the engine."""
    try:
        pack = load_pack(pack_dir)
    except PackError as exc:
        raise PackInvalid(str(exc)) from exc
    return dict(pack.meta), pack.handout


def _aware(value):
    if isinstance(value, datetime):
        return value if timezone.is_aware(value) else timezone.make_aware(value)
    if hasattr(value, "year") and not isinstance(value, datetime):  # a TOML date: end of that day
        return timezone.make_aware(datetime.combine(value, time(23, 59)))
    if isinstance(value, str) and value:
        parsed = datetime.fromisoformat(value)
        return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed)
    return None


def sync_pack(course, pack_dir: Path, stdout=None) -> tuple[Assignment, str]:
    """Create or update the Assignment for one pack; returns (assignment, what happened)."""
    pack_dir = Path(pack_dir).resolve()
    meta, handout = load_meta(pack_dir)
    slug = str(meta.get("slug") or pack_dir.name)
    store = Path(settings.PACK_STORE).resolve()
    if pack_dir.parent.parent == store and slug == pack_dir.name:  # a trusted copy: PACK_STORE/<slug>/<hash>/
        slug = pack_dir.parent.name
    digest = pack_hash(pack_dir)
    trusted = store_pack(slug, pack_dir, digest)
    limits = meta.get("limits") or {}
    fields = {
        "title": str(meta.get("title") or slug),
        "points": float(meta.get("points") or 0),
        "queue": "gpu" if meta.get("queue") == "gpu" else "cpu",
        "accepted_kinds": list(meta.get("accepted") or meta.get("accepted_kinds") or ["py", "ipynb", "zip"]),
        "wall_limit_s": float(limits.get("wall_s") or 120),
        "handout_html": render_handout(handout),
        "pack_source": str(pack_dir),
        "pack_hash": digest,
        "pack_path": str(trusted),
    }
    # Deadlines and policy: the instructor's settings win, unless the pack's assignment.toml
    # states a setting explicitly and that statement changed since the last sync.
    stated = _stated_settings(pack_dir)
    assignment = Assignment.objects.filter(course=course, slug=slug).first()
    created = assignment is None
    if created:
        assignment = Assignment(course=course, slug=slug)
        late = meta.get("late") if isinstance(meta.get("late"), dict) else {}
        apply = {**{f"late.{k}": v for k, v in late.items()}, **stated}
    else:
        previous = assignment.pack_settings or {}
        apply = {k: v for k, v in stated.items() if previous.get(k) != v}
    fields["pack_settings"] = stated
    if "due" in apply:
        fields["due_at"] = _aware(apply["due"])
    if "opens" in apply:
        fields["opens_at"] = _aware(apply["opens"])
    if "late.grace_minutes" in apply:
        fields["grace_minutes"] = int(apply["late.grace_minutes"])
    if "late.penalty_percent_per_day" in apply:
        fields["late_penalty_percent"] = float(apply["late.penalty_percent_per_day"])
    if "leaderboard.metric" in apply:
        fields["leaderboard_metric"] = str(apply["leaderboard.metric"])[:64]
    if "leaderboard.order" in apply:
        fields["leaderboard_order"] = "asc" if apply["leaderboard.order"] == "asc" else "desc"
    if "late.max_days" in apply:
        days = int(apply["late.max_days"])
        fields["late_policy"] = LatePolicy.CLOSED if days == 0 else LatePolicy.PENALTY
        if days:
            fields["late_cutoff_days"] = days
    changed = [name for name, value in fields.items() if getattr(assignment, name) != value]
    for name, value in fields.items():
        setattr(assignment, name, value)
    if created or changed:
        if created or "pack_hash" in changed:
            assignment.pack_synced_at = timezone.now()
        assignment.save()
    what = "created" if created else ("updated: " + ", ".join(changed) if changed else "unchanged")
    if stdout is not None:
        stdout.write(f"  assignment {slug}: {what} (pack {digest[:12]})\n")
    return assignment, what


def _stated_settings(pack_dir: Path) -> dict:
    """The deadline/late keys assignment.toml itself writes (not the engine's defaults), as JSON."""
    try:
        raw = tomllib.loads((pack_dir / "assignment.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    stated = {}
    for key in ("due", "opens"):
        if raw.get(key):
            stated[key] = _aware(raw[key]).isoformat()
    late = raw.get("late") if isinstance(raw.get("late"), dict) else {}
    for key in ("grace_minutes", "penalty_percent_per_day", "max_days"):
        if key in late:
            stated[f"late.{key}"] = late[key]
    stated.update(leaderboard_settings(raw))
    return stated


DEFAULT_LEADERBOARD_METRIC = "accuracy"


def leaderboard_settings(raw: dict) -> dict:
    """The leaderboard a pack asks for: a `[leaderboard]` table (metric, order) or a tag
    `leaderboard`, `leaderboard:<metric>` or `leaderboard:<metric>:asc` in `tags`."""
    table = raw.get("leaderboard")
    metric, order = None, "desc"
    if isinstance(table, dict) and table.get("metric"):
        metric, order = str(table["metric"]), str(table.get("order") or "desc")
    else:
        for tag in raw.get("tags") or []:
            parts = str(tag).split(":")
            if parts[0] == "leaderboard":
                metric = parts[1] if len(parts) > 1 and parts[1] else DEFAULT_LEADERBOARD_METRIC
                order = parts[2] if len(parts) > 2 else "desc"
                break
    if not metric:
        return {}
    return {"leaderboard.metric": metric, "leaderboard.order": "asc" if order.lower() in ("asc", "min", "lower") else "desc"}


def sync(course, root: Path, stdout=None) -> list[Assignment]:
    """Every `<root>/*/assignment.toml` pack becomes (or updates) an assignment of the course.
    A broken pack does not stop the others; it is logged with its cause, and once the others are
    synced, hooks.PartsFailed (result: the synced assignments) names every broken one."""
    stdout = stdout or sys.stdout
    root = Path(root)
    done, problems = [], []
    for toml_path in sorted(root.glob("*/assignment.toml")):
        try:
            assignment, _ = sync_pack(course, toml_path.parent, stdout)
        except Exception as exc:  # one broken pack must not stop the others
            stdout.write(f"  assignment {toml_path.parent.name}: SKIPPED, invalid pack: {type(exc).__name__}: {exc}\n")
            hooks.part_failed(f"assignment pack {toml_path.parent.name}", exc, problems)
            continue
        done.append(assignment)
    if problems:
        raise hooks.PartsFailed(problems, result=done)
    return done
