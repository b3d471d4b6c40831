"""Group and delivery rules, in one place for the views, the admin-like staff pages, demo and tests.

Every refusal raises ProjectError with a message a student can act on; every group change
writes a GroupEvent (the history staff see).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.db.models.functions import Lower
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.formats import date_format

from courseplatform.courses.models import is_student, students_of
from grader.api import SubmissionError, ZipRefused, check_all, delivery_policy, load_notebook_json, read_bounded

from . import litreview
from .models import (
    CriterionScore,
    Delivery,
    DeliveryVersion,
    Group,
    GroupEvent,
    GroupMember,
    MemberOverride,
    Milestone,
    MilestoneGrade,
    ProjectSettings,
    new_join_code,
    normalise_join_code,
)


class ProjectError(Exception):
    """A refused action; str(e) is the message shown to the user."""


def max_delivery_bytes() -> int:
    return int(settings.PROJECT_DELIVERY_MAX_BYTES)


def local(dt) -> str:
    return date_format(timezone.localtime(dt), "D d.m.Y H:i T")


# --- groups -------------------------------------------------------------------------------


def group_of(course, user) -> Group | None:
    gm = GroupMember.objects.filter(course=course, user=user).select_related("group").first()
    return gm.group if gm else None


def log(course, action, actor=None, group=None, subject=None, detail="") -> GroupEvent:
    return GroupEvent.objects.create(
        course=course, group=group, group_name=group.name if group else "", actor=actor,
        subject=subject, action=action, detail=detail[:300],
    )


def _check_student_may_change(course, settings_: ProjectSettings):
    if not settings_.students_form_groups:
        raise ProjectError("In this course the instructors form the groups; ask them to place you.")
    if settings_.is_locked():
        raise ProjectError("Groups are locked: ask an instructor if you need to change groups.")


def _clean_name(course, name: str, exclude: Group | None = None) -> str:
    name = " ".join((name or "").split())
    if not name.isprintable():
        raise ProjectError("The group name contains control characters; use letters, digits and punctuation.")
    if not name:
        raise ProjectError("Give the group a name.")
    if len(name) > 80:
        raise ProjectError("The group name is too long (at most 80 characters).")
    qs = Group.objects.filter(course=course).annotate(lname=Lower("name")).filter(lname=name.lower())
    if exclude is not None:
        qs = qs.exclude(pk=exclude.pk)
    if qs.exists():
        raise ProjectError(f"A group named “{name}” already exists in this course; pick another name.")
    return name


@transaction.atomic
def create_group(course, user, name: str, *, by_staff: bool = False) -> Group:
    """A student creates a group and joins it; staff create an empty group."""
    cfg = ProjectSettings.for_course(course)
    if not by_staff:
        _check_student_may_change(course, cfg)
        current = group_of(course, user)
        if current is not None:
            raise ProjectError(f"You are already in group “{current.name}”; leave it before creating another.")
    name = _clean_name(course, name)
    try:
        with transaction.atomic():
            group = Group.objects.create(course=course, name=name, created_by=user)
    except IntegrityError:
        raise ProjectError(f"A group named “{name}” already exists in this course; pick another name.")
    log(course, GroupEvent.Action.CREATED, user, group)
    if not by_staff:
        try:
            with transaction.atomic():
                GroupMember.objects.create(course=course, group=group, user=user)
        except IntegrityError:
            raise ProjectError("You are already in a group; leave it before creating another.")
        log(course, GroupEvent.Action.JOINED, user, group, subject=user, detail="as its creator")
    return group


@transaction.atomic
def join_group(course, user, code: str) -> Group:
    cfg = ProjectSettings.for_course(course)
    _check_student_may_change(course, cfg)
    code = normalise_join_code(code)
    if not code:
        raise ProjectError("Enter the join code your group shared with you.")
    group = Group.objects.select_for_update().filter(course=course, join_code=code).first()
    if group is None:
        # Same message for a wrong code and a code of another course: nothing is revealed.
        raise ProjectError("No group in this course has that join code. Check it with your group.")
    current = group_of(course, user)
    if current is not None:
        if current.pk == group.pk:
            raise ProjectError(f"You are already in group “{group.name}”.")
        raise ProjectError(f"You are already in group “{current.name}”; leave it before joining another.")
    size = group.members.count()
    if size >= cfg.max_group_size:
        raise ProjectError(f"Group “{group.name}” is full ({size} of {cfg.max_group_size} members).")
    try:
        with transaction.atomic():
            GroupMember.objects.create(course=course, group=group, user=user)
    except IntegrityError:  # a concurrent request put the student into a group first
        raise ProjectError("You are already in a group; leave it before joining another.")
    log(course, GroupEvent.Action.JOINED, user, group, subject=user, detail="with the join code")
    return group


def _drop_if_empty(course, group, actor):
    if group.members.exists() or group.deliveries.exists() or group.grades.exists():
        return
    log(course, GroupEvent.Action.DELETED, actor, group, detail="the last member left")
    group.delete()


@transaction.atomic
def leave_group(course, user) -> Group:
    cfg = ProjectSettings.for_course(course)
    _check_student_may_change(course, cfg)
    gm = GroupMember.objects.select_related("group").filter(course=course, user=user).first()
    if gm is None:
        raise ProjectError("You are not in a group.")
    group = gm.group
    gm.delete()
    log(course, GroupEvent.Action.LEFT, user, group, subject=user)
    _drop_if_empty(course, group, user)
    return group


@transaction.atomic
def move_student(course, actor, student, target: Group | None) -> None:
    """Staff: put a student into `target` (None: out of any group). Works while groups are locked."""
    if not is_student(course, student):
        raise ProjectError("Only students of this course can be placed in groups.")
    if target is not None and target.course_id != course.id:
        raise ProjectError("That group belongs to another course.")
    cfg = ProjectSettings.for_course(course)
    gm = GroupMember.objects.select_related("group").filter(course=course, user=student).first()
    source = gm.group if gm else None
    if source is not None and target is not None and source.pk == target.pk:
        raise ProjectError(f"{student.username} is already in “{target.name}”.")
    if target is not None:
        size = target.members.count()
        if size >= cfg.max_group_size:
            raise ProjectError(
                f"Group “{target.name}” is full ({size} of {cfg.max_group_size}); raise the maximum size first."
            )
    if gm is None and target is None:
        raise ProjectError(f"{student.username} is not in a group.")
    if gm is not None:
        gm.delete()
    if target is None:
        log(course, GroupEvent.Action.REMOVED, actor, source, subject=student)
        return
    GroupMember.objects.create(course=course, group=target, user=student)
    detail = f"from “{source.name}”" if source else "into a group"
    log(course, GroupEvent.Action.MOVED, actor, target, subject=student, detail=f"{detail} to “{target.name}”")


@transaction.atomic
def rename_group(course, actor, group, name: str) -> None:
    old = group.name
    group.name = _clean_name(course, name, exclude=group)
    group.save(update_fields=["name"])
    log(course, GroupEvent.Action.RENAMED, actor, group, detail=f"from “{old}”")


@transaction.atomic
def delete_group(course, actor, group) -> None:
    if group.deliveries.exists() or group.grades.exists():
        raise ProjectError(f"“{group.name}” has deliveries or grades; move its members instead of deleting it.")
    log(course, GroupEvent.Action.DELETED, actor, group, detail=f"with {group.members.count()} member(s)")
    group.delete()


@transaction.atomic
def new_code(course, actor, group) -> str:
    group.join_code = new_join_code()
    group.save(update_fields=["join_code"])
    log(course, GroupEvent.Action.NEW_CODE, actor, group)
    return group.join_code


@transaction.atomic
def set_locked(course, actor, locked: bool) -> None:
    cfg = ProjectSettings.for_course(course)
    cfg.locked = locked
    if not locked and cfg.lock_at and cfg.lock_at <= timezone.now():
        cfg.lock_at = None  # unlocking also lifts a lock date already passed
    cfg.save()
    log(course, GroupEvent.Action.LOCKED if locked else GroupEvent.Action.UNLOCKED, actor)


def students_without_group(course):
    in_group = GroupMember.objects.filter(course=course).values("user_id")
    return (
        students_of(course)
        .exclude(id__in=in_group)
        .order_by("last_name", "first_name", "username")
    )


# --- deliveries ---------------------------------------------------------------------------

_url_validator = URLValidator(schemes=["http", "https"])


def clean_repo_url(raw: str) -> str:
    url = (raw or "").strip()
    if not url:
        raise ProjectError("Enter the repository URL (https://...).")
    if len(url) > 500:
        raise ProjectError("The repository URL is too long (at most 500 characters).")
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise ProjectError("The repository URL may not contain spaces or control characters.")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise ProjectError("The repository URL must start with https:// or http:// (other schemes are refused).")
    if not parts.hostname:
        raise ProjectError("The repository URL needs a host name, e.g. https://github.com/team/project.")
    if parts.username or parts.password:
        raise ProjectError("Remove the user name or token from the repository URL; share access instead.")
    try:
        _url_validator(url)
    except ValidationError:
        raise ProjectError("That is not a valid web address; use e.g. https://github.com/team/project.")
    return url


def _check_file_content(ext: str, data: bytes, name: str = "delivery.zip") -> None:
    if ext == "pdf":
        if not data.startswith(b"%PDF-"):
            raise ProjectError("This file is not a PDF (it does not start with %PDF-).")
    elif ext in ("md", "markdown", "txt"):
        if b"\x00" in data:
            raise ProjectError("This file is not text (it contains binary data).")
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            raise ProjectError("Text files must be UTF-8 encoded.")
    elif ext == "zip":  # the platform's one zip policy (grader.intake.ziparchive), with a delivery's budget
        try:
            check_all(data, name, delivery_policy(max_delivery_bytes()))
        except ZipRefused as exc:
            raise ProjectError(exc.message)
    elif ext == "ipynb":  # the engine's bounded walk (depth, values, cells), not an unbounded json.loads
        try:
            load_notebook_json(data.decode("utf-8"), name)
        except UnicodeDecodeError:
            raise ProjectError("This notebook is not valid JSON.")
        except SubmissionError as exc:
            raise ProjectError(f"This notebook is not valid JSON or not a notebook: {str(exc).split(': ', 1)[-1]}")


@dataclass
class CleanFile:
    name: str
    data: bytes
    ext: str
    sha256: str = ""  # hashed as it was read (clean_file)


def clean_file(milestone: Milestone, upload) -> CleanFile:
    limit = max_delivery_bytes()
    if upload.size > limit:
        raise ProjectError(
            f"The file is {filesizeformat(upload.size)}; the limit is {filesizeformat(limit)}. "
            "Compress it or link large material from your repository."
        )
    name = (upload.name or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    allowed = milestone.extensions
    if ext not in allowed:
        raise ProjectError(
            f"“{name or 'this file'}” has a type this milestone does not accept; upload "
            + ", ".join(f".{e}" for e in allowed) + "."
        )
    try:  # read once, within the limit
        data, sha256 = read_bounded(upload, limit)
    except SubmissionError:
        raise ProjectError(f"The file is larger than the limit of {filesizeformat(limit)}.") from None
    if not data:
        raise ProjectError("The file is empty.")
    safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name)[:120] or f"delivery.{ext}"
    _check_file_content(ext, data, safe)
    return CleanFile(name=safe, data=data, ext=ext, sha256=sha256)


def require_member(group: Group, user) -> None:
    if not group.has_member(user):
        raise ProjectError("You are not a member of this group: you can only deliver for your own group.")


def review_text(milestone: Milestone, text: str, file: CleanFile | None) -> str | None:
    """The Markdown to structure-check: pasted text wins over an uploaded .md file."""
    if text and text.strip():
        return text
    if file is not None and file.ext in ("md", "markdown", "txt"):
        return file.data.decode("utf-8")
    return None


def check_structure(milestone: Milestone, text: str | None) -> litreview.CheckReport:
    return litreview.check(text or "", milestone.min_sources)


@transaction.atomic
def deliver(milestone: Milestone, group: Group, user, *, repo_url: str = "", upload=None, text: str = "",
            now=None) -> DeliveryVersion:
    """Store a new version of the group's delivery, or raise ProjectError (nothing stored)."""
    now = now or timezone.now()
    require_member(group, user)
    if group.course_id != milestone.course_id:
        raise ProjectError("That group belongs to another course.")
    if milestone.deliverable == "none":
        raise ProjectError("This milestone has nothing to upload.")
    late = now > milestone.due
    if late and not milestone.allow_late:
        raise ProjectError(
            f"The deadline passed on {local(milestone.due)}; this milestone does not accept late deliveries."
        )
    if MilestoneGrade.objects.filter(milestone=milestone, group=group).exists():
        raise ProjectError("This delivery has already been graded; it can no longer be replaced.")
    url = clean_repo_url(repo_url) if milestone.wants_url else ""
    file: CleanFile | None = None
    has_upload = upload is not None and getattr(upload, "name", "")
    if milestone.wants_file:
        if has_upload:
            file = clean_file(milestone, upload)
        elif milestone.is_literature_review and text.strip():
            data = text.replace("\r\n", "\n").encode("utf-8")
            if len(data) > max_delivery_bytes():
                raise ProjectError("The text is larger than the upload limit.")
            file = CleanFile(name="literature-review.md", data=data, ext="md")
        else:
            what = "a Markdown file or the text of your review" if milestone.is_literature_review else "a file"
            raise ProjectError(f"Upload {what}.")
    report = {}
    if milestone.is_literature_review:
        result = check_structure(milestone, review_text(milestone, text if not has_upload else "", file))
        if not result.ok:
            raise ProjectError("The literature review is not complete yet: " + " ".join(result.problems))
        report = result.as_dict()
    delivery, _ = Delivery.objects.select_for_update().get_or_create(
        milestone=milestone, group=group, defaults={"created_at": now, "updated_at": now}
    )
    number = (delivery.versions.order_by("-number").values_list("number", flat=True).first() or 0) + 1
    version = DeliveryVersion(
        delivery=delivery, number=number, repo_url=url, submitted_by=user, submitted_at=now,
        is_late=late, check_report=report,
    )
    if file is not None:
        version.filename = file.name
        version.size = len(file.data)
        version.sha256 = file.sha256 or hashlib.sha256(file.data).hexdigest()
        version.file.save(file.name, ContentFile(file.data), save=False)
    version.save()
    delivery.updated_at = now
    delivery.save(update_fields=["updated_at"])
    return version


# --- grades --------------------------------------------------------------------------------


def to_decimal(raw, label: str, maximum: float) -> Decimal:
    try:
        value = Decimal(str(raw).strip().replace(",", "."))
    except Exception:
        raise ProjectError(f"{label}: enter a number.")
    if not value.is_finite():
        raise ProjectError(f"{label}: enter a number.")
    if value < 0:
        raise ProjectError(f"{label}: points cannot be negative.")
    if value > Decimal(str(maximum)):
        raise ProjectError(f"{label}: {value:g} is more than the maximum of {maximum:g} points.")
    return value.quantize(Decimal("0.01"))


# --- states for the matrix, the pages and the panels -----------------------------------------


@dataclass
class CellState:
    state: str  # graded | on_time | late | missing | open | none
    label: str
    when: object = None
    score: float | None = None
    max_points: float = 0.0
    delivery: Delivery | None = None
    grade: MilestoneGrade | None = None
    versions: int = 0
    milestone: Milestone | None = None
    late: bool = False

    @property
    def css(self) -> str:
        return {"graded": "ok", "on_time": "ok", "late": "warn", "missing": "bad"}.get(self.state, "muted")


def cell_state(milestone: Milestone, delivery: Delivery | None, grade: MilestoneGrade | None, latest=None,
               versions: int = 0, now=None) -> CellState:
    cell = _cell_state(milestone, delivery, grade, latest, versions, now or timezone.now())
    cell.milestone = milestone
    return cell


def _cell_state(milestone, delivery, grade, latest, versions, now) -> CellState:
    mx = milestone.max_points
    if grade is not None:
        return CellState("graded", f"graded {float(grade.score):g}/{mx:g}", grade.graded_at, float(grade.score), mx,
                         delivery, grade, versions, late=bool(latest and latest.is_late))
    if delivery is not None and latest is not None:
        if latest.is_late:
            return CellState("late", "late", latest.submitted_at, None, mx, delivery, None, versions, late=True)
        return CellState("on_time", "on time", latest.submitted_at, None, mx, delivery, None, versions)
    if milestone.deliverable == "none":
        return CellState("none", "nothing to upload", None, None, mx)
    if now > milestone.due:
        return CellState("missing", "missing", milestone.due, None, mx)
    return CellState("open", "not yet", milestone.due, None, mx)


def matrix(course, now=None):
    """(milestones, rows) where rows = [(group, [CellState per milestone])]."""
    now = now or timezone.now()
    milestones = list(Milestone.objects.filter(course=course).prefetch_related("criteria"))
    groups = list(Group.objects.filter(course=course).prefetch_related("members__user"))
    deliveries = {
        (d.milestone_id, d.group_id): d
        for d in Delivery.objects.filter(milestone__course=course).prefetch_related("versions")
    }
    grades = {(g.milestone_id, g.group_id): g for g in MilestoneGrade.objects.filter(milestone__course=course)}
    rows = []
    for group in groups:
        cells = []
        for m in milestones:
            d = deliveries.get((m.id, group.id))
            versions = sorted(d.versions.all(), key=lambda v: v.number) if d else []
            cells.append(cell_state(m, d, grades.get((m.id, group.id)), versions[-1] if versions else None,
                                    len(versions), now))
        rows.append((group, cells))
    return milestones, rows


def next_milestone(course, now=None) -> Milestone | None:
    now = now or timezone.now()
    return Milestone.objects.filter(course=course, due__gte=now).order_by("due", "order").first()


def state_for_group(milestone: Milestone, group: Group | None, now=None) -> CellState:
    if group is None:
        return cell_state(milestone, None, None, now=now)
    d = Delivery.objects.filter(milestone=milestone, group=group).first()
    latest = d.latest if d else None
    g = MilestoneGrade.objects.filter(milestone=milestone, group=group).first()
    return cell_state(milestone, d, g, latest, d.versions.count() if d else 0, now)


# --- rubric grading ---------------------------------------------------------------------------


def grade_delivery(milestone: Milestone, group: Group, grader, *, total, feedback: str, scores: dict,
                   overrides: dict) -> MilestoneGrade:
    """Store a group's grade of a milestone in one transaction: the grade (with the delivery version
    it grades), the rubric's criterion scores ({criterion: (points, comment)}) and the individual
    overrides ({user: (score, reason)}), each replacing what was there."""
    delivery = Delivery.objects.filter(milestone=milestone, group=group).first()
    with transaction.atomic():
        grade, _ = MilestoneGrade.objects.update_or_create(
            milestone=milestone, group=group,
            defaults={"score": total, "feedback": feedback, "graded_by": grader, "graded_at": timezone.now(),
                      "graded_version": delivery.latest if delivery else None},
        )
        grade.criterion_scores.all().delete()
        CriterionScore.objects.bulk_create(
            [CriterionScore(grade=grade, criterion=c, points=v, comment=cm) for c, (v, cm) in scores.items()])
        grade.overrides.all().delete()
        MemberOverride.objects.bulk_create(
            [MemberOverride(grade=grade, user=u, score=v, reason=r) for u, (v, r) in overrides.items()])
    return grade


def remove_grade(milestone: Milestone, group: Group) -> bool:
    """Remove a group's grade of a milestone (with its scores and overrides); whether there was one."""
    deleted, _ = MilestoneGrade.objects.filter(milestone=milestone, group=group).delete()
    return bool(deleted)
