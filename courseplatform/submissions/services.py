"""Submitting, regrading and presenting feedback: the logic the views, the API and the demo share."""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.timesince import timeuntil

from courseplatform.grading import jobs

from . import dispatch
from .models import PENDING_STATES, Assignment, LateInfo, State, Submission
from .notebooks import image_type, is_notebook
from .sync import sync_pack
from .validation import CheckedFile, UploadRejected, check_upload, engine_check

BLOB_DIR = "submissions"
DECODED_DIR = "decoded"  # the intake's decoded forms (services.decoded_path)


# --- files ------------------------------------------------------------------------------


def blob_path(relpath: str) -> Path:
    return Path(settings.MEDIA_ROOT) / relpath


def write_once(rel: str, write) -> bool:
    """Write a file of the content-addressed store atomically (readers never see half a file) and
    read-only; False when it is already there (immutable once written)."""
    dest = blob_path(rel)
    if dest.exists():
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as out:
            write(out)
        os.chmod(tmp, 0o440)
        os.replace(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return True


def store_blob(upload, checked: CheckedFile) -> tuple[str, bool]:
    """Store the upload by content hash; returns (relative path, created). Immutable once written.
    The bytes are the intake's (read once by check_upload); the upload is read only without one.
    The decoded form for the pack (engine_check) is stored too (decoded_path), for the worker."""
    rel = f"{BLOB_DIR}/{checked.sha256[:2]}/{checked.sha256}.{checked.kind}"

    def write(out):
        if checked.intake is not None:
            out.write(checked.intake.data)
            return
        upload.seek(0)
        for chunk in upload.chunks():
            out.write(chunk)

    created = write_once(rel, write)
    if checked.decoded is not None and checked.decoded_key:
        write_once(decoded_path(rel, checked.decoded_key), lambda out: out.write(checked.decoded.dumps()))
    return rel, created


def decoded_path(rel: str, key: str) -> str:
    """Where the decoded form of the blob ``rel`` for a pack (grader.intake.submission.decoded_key) is kept:
    beside the blobs, under DECODED_DIR, by the blob's content hash."""
    return f"{DECODED_DIR}/{rel.removeprefix(BLOB_DIR + '/')}.{key}.json"


def remove_blob(rel: str) -> None:
    """A blob this request wrote and no row refers to, with its decoded forms."""
    for extra in blob_path(decoded_path(rel, "x")).parent.glob(PurePosixPath(rel).name + ".*.json"):
        extra.unlink(missing_ok=True)
    blob_path(rel).unlink(missing_ok=True)


def read_blob(submission: Submission) -> bytes:
    return blob_path(submission.blob).read_bytes()


def read_decoded(submission: Submission, key: str):
    """The decoded form the web kept for this submission's file and pack (a grader.intake.submission.Decoded),
    or None when there is none for that pack (another module, an older engine, a file stored before
    the intake kept one): then the worker decodes the file itself."""
    from grader.api import Decoded

    try:
        return Decoded.loads(blob_path(decoded_path(submission.blob, key)).read_bytes())
    except (OSError, ValueError, KeyError, TypeError):
        return None


# --- policy -----------------------------------------------------------------------------


@dataclass
class Standing:
    """What one person may do on one assignment right now."""

    due: object
    late: LateInfo
    attempts_used: int
    attempts_left: int | None  # None: unlimited
    cooldown_left: int  # seconds
    pending: int
    can_submit: bool
    reason: str
    is_staff: bool


def standing(assignment: Assignment, user, is_staff: bool, now=None) -> Standing:
    now = now or timezone.now()
    mine = Submission.objects.filter(assignment=assignment, student=user, is_test_run=is_staff)
    used = mine.count()
    pending = mine.filter(state__in=PENDING_STATES).count()
    last = mine.order_by("-created_at").values_list("created_at", flat=True).first()
    due = assignment.due_for(user)
    late = assignment.late_info(user, now)
    left = None if not assignment.max_attempts else max(0, assignment.max_attempts - used)
    cooldown = 0
    if assignment.cooldown_seconds and last is not None:
        cooldown = max(0, int((last + timedelta(seconds=assignment.cooldown_seconds) - now).total_seconds() + 0.999))
    reason = ""
    if is_staff:
        # Staff test runs skip the deadline, attempts and cool-down, but not the queue limit.
        if pending >= max(assignment.max_queued_per_student, 1):
            reason = f"You already have {pending} submission(s) waiting to be graded; wait for them to finish."
    elif not assignment.released:
        reason = "This assignment is not open yet."
    elif assignment.opens_at and now < assignment.opens_at:
        reason = f"This assignment opens in {timeuntil(assignment.opens_at, now)}."
    elif not late.accepted:
        reason = late.reason
    elif left == 0:
        reason = f"You have used all {assignment.max_attempts} attempts for this assignment."
    elif pending >= max(assignment.max_queued_per_student, 1):
        reason = (
            f"You already have {pending} submission(s) waiting to be graded (the limit is "
            f"{assignment.max_queued_per_student}); wait for them to finish."
        )
    elif cooldown:
        reason = f"Please wait {cooldown} s before your next attempt (cool-down between attempts)."
    return Standing(due, late, used, left, cooldown, pending, not reason, reason, is_staff)


# --- submitting ---------------------------------------------------------------------------


def submit(assignment: Assignment, user, upload, *, is_staff: bool, via: str = "web") -> Submission:
    """Check, store and enqueue one upload. Raises UploadRejected; on refusal nothing is stored."""

    def admit(now) -> dict:
        st = standing(assignment, user, is_staff, now)
        if not st.can_submit:
            raise UploadRejected(st.reason, "policy")
        return {
            "is_test_run": is_staff,
            "attempt": st.attempts_used + 1,
            "via": via,
            "late_days": 0 if is_staff else st.late.days,
            "penalty_percent": 0.0 if is_staff else st.late.penalty,
            "max_score": assignment.points,
        }

    return accept_upload(assignment, user, upload, admit)


def accept_upload(assignment: Assignment, user, upload, admit) -> Submission:
    """The one way an upload becomes a queued Submission (an attempt, a staff test run or a check):
    validate it, then under a per-person lock call ``admit(now)``, which raises UploadRejected to
    refuse or returns the Submission's own fields; then store the file, create the row and enqueue
    it once committed. On refusal or error nothing is stored (a blob this call wrote is removed)."""
    checked = check_upload(upload, assignment.kinds)
    engine_check(upload, checked, assignment.pack_path, assignment.kinds)
    created_blob = None
    try:
        with transaction.atomic():
            # Serialise one person's uploads so that two parallel requests cannot both pass
            # the attempt/queue/rate limits.
            get_user_model().objects.select_for_update().filter(pk=user.pk).exists()
            now = timezone.now()
            fields = admit(now)
            rel, created = store_blob(upload, checked)
            created_blob = rel if created else None
            sub = Submission.objects.create(
                assignment=assignment,
                student=user,
                sha256=checked.sha256,
                blob=rel,
                original_name=checked.name,
                kind=checked.kind,
                size=checked.size,
                state=State.QUEUED,
                created_at=now,
                queued_at=now,
                **fields,
            )
            enqueue_on_commit(sub)
    except BaseException:
        if created_blob and not Submission.objects.filter(blob=created_blob).exists():
            remove_blob(created_blob)
        raise
    return sub


def enqueue_on_commit(sub: Submission) -> None:
    """Send the grading task once the row is committed, routed to the pack's queue."""
    jobs.send_on_commit(jobs.KINDS[dispatch.SUBMISSION_KIND], sub)


def regrade(queryset, reset_deliveries: bool = True) -> int:
    """Put the given submissions back in the queue (with the assignment's current pack), through the
    one requeue (grading.jobs.requeue). The sweeper keeps the delivery count, so a submission that
    kills workers is stopped. A graded submission keeps its score and feedback until the new result
    replaces them (it counts meanwhile, shown as "regrading"); one that had ended in an error has no
    score to keep."""
    ids = list(queryset.values_list("pk", flat=True))
    with transaction.atomic():
        Submission.objects.filter(pk__in=ids, state=State.ERROR).update(score=None, raw_score=None)
        return jobs.requeue(jobs.KINDS[dispatch.SUBMISSION_KIND], ids, "Queued for regrading.", fresh=True,
                            reset_deliveries=reset_deliveries)


@dataclass
class Resync:
    """What resync_pack did: the pack version before and after, and how many submissions it queued."""

    assignment: Assignment
    old_hash: str
    regraded: int | None  # None: no regrade was asked for

    @property
    def changed(self) -> bool:
        return self.assignment.pack_hash != self.old_hash


def pack_source(assignment: Assignment) -> Path:
    """The folder an assignment's pack is synced from (its recorded source, else ASSIGNMENTS_DIR/<slug>)."""
    return Path(assignment.pack_source or (Path(settings.ASSIGNMENTS_DIR) / assignment.slug))


def resync_pack(assignment: Assignment, *, regrade_all: bool = False) -> Resync:
    """Load the assignment's pack again from its source folder; with regrade_all, queue every
    submission for regrading with it. Raises sync.PackInvalid, OSError or ValueError for a pack that
    cannot be loaded (nothing changes then)."""
    old = assignment.pack_hash
    assignment, _ = sync_pack(assignment.course, pack_source(assignment))
    regraded = regrade(Submission.objects.filter(assignment=assignment)) if regrade_all else None
    return Resync(assignment, old, regraded)


def assignment_stats(assignments) -> dict[int, dict]:
    """Per assignment id, the staff's counts of its submissions for credit: students, total, pending
    (queued or running) and errors."""
    return {
        row["assignment"]: row
        for row in Submission.objects.filter(assignment__in=assignments, is_test_run=False)
        .values("assignment")
        .annotate(
            students=Count("student", distinct=True),
            total=Count("id"),
            pending=Count("id", filter=Q(state__in=PENDING_STATES)),
            errors=Count("id", filter=Q(state=State.ERROR)),
        )
    }


def counted_score(assignment: Assignment, subs: list[Submission]) -> Submission | None:
    """The submission that counts for the gradebook under the assignment's rule."""
    graded = [s for s in subs if s.has_score and not s.is_test_run]
    if not graded:
        return None
    if assignment.score_rule == "latest":
        return max(graded, key=lambda s: (s.created_at, s.pk))
    return max(graded, key=lambda s: (s.score, s.created_at))


# --- feedback -------------------------------------------------------------------------------


def feedback(submission: Submission, viewer_is_staff: bool, now=None) -> dict:
    """The result as the viewer may see it. Hidden tests keep their points; their names,
    inputs and messages are withheld from students until the instructor releases them after
    the deadline."""
    result = submission.result or {}
    show_hidden = viewer_is_staff or submission.assignment.hidden_details_visible(now)
    tests = []
    hidden_no = 0
    for test in result.get("tests") or []:
        visible = bool(test.get("visible", True))
        item = {
            "name": str(test.get("name", "")),
            "score": test.get("score"),
            "max_score": test.get("max_score"),
            "status": str(test.get("status", "")),
            "message": str(test.get("message") or ""),
            "visible": visible,
            "redacted": False,
        }
        if not visible:
            hidden_no += 1
            if not show_hidden:
                item.update(name=f"Hidden test {hidden_no}", message="", redacted=True)
        tests.append(item)
    artifacts = []
    for index, a in enumerate(result.get("artifacts") or []):
        if not isinstance(a, dict):
            continue
        kind = "notebook" if is_notebook(a) else ("image" if image_type(a) else "file")
        artifacts.append({"index": index, "name": str(a.get("name", "")), "content_type": str(a.get("content_type", "")), "kind": kind})
    return {
        "tests": tests,
        "notes": [str(n) for n in result.get("notes") or []],
        "metrics": result.get("metrics") or {},
        "artifacts": artifacts,
        "engine_status": result.get("status"),
        # the engine's reasons for a human look (grader: "review"), for staff only
        "review": [str(r) for r in result.get("review") or []] if viewer_is_staff else [],
    }


def find_stuck(now=None, margin_s: int = 120, queued_after_s: int = 3600):
    """Submissions `running` longer than their pack's wall limit + margin, or `queued` for
    longer than queued_after_s (a lost message)."""
    now = now or timezone.now()
    running = Submission.objects.filter(state=State.RUNNING, started_at__isnull=False).select_related("assignment")
    stuck_ids = [
        s.pk
        for s in running.only("id", "started_at", "assignment__wall_limit_s")
        if s.started_at + timedelta(seconds=(s.assignment.wall_limit_s or 120) + margin_s) < now
    ]
    stale_queued = Submission.objects.filter(
        state=State.QUEUED, queued_at__lt=now - timedelta(seconds=queued_after_s)
    ).values_list("id", flat=True)
    return Submission.objects.filter(Q(pk__in=stuck_ids) | Q(pk__in=list(stale_queued)))
