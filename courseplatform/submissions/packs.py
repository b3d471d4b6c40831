"""Instructors upload an assignment pack as a zip.

1. `receive()` (in the request): the zip is checked without trusting it by the one zip policy,
   `grader.intake.ziparchive`, with a pack's larger size budget (`pack_policy`),
   extracted into trusted storage (PACK_STORE/_uploads/<id>/<slug>/), and validated by the
   engine (`grader.authoring.pack.load_pack`: assignment.toml, reference.py, tests.py). A refused zip leaves
   nothing behind.
2. `check_pack_upload` (a Celery task on the pack's queue, so a GPU pack is checked on a GPU
   worker): the engine's self-check (`grader.authoring.check`): the reference and every solutions/* get full
   marks, the starter zero, each mutant the score and message recorded in mutants/expected.toml.
   Progress is saved after each file; the page polls it.
3. If every expectation holds, the pack is installed exactly as `sync_course` does
   (`sync.sync_pack`: copied to PACK_STORE/<slug>/<hash>/, Assignment created or updated in this
   course only) and, if asked, every submission is regraded. A failing pack is not installed.

Trusted storage is content-addressed (PACK_STORE/<slug>/<hash>/, written once), so an upload can
never change the files another course's assignment grades with, even under the same slug.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.db import transaction
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from courseplatform.grading import jobs
from grader.api import CheckedZip, PackError, SubmissionError, ZipRefused, open_zip, pack_policy, read_bounded
from grader.api import check as engine_check

from . import dispatch, services
from .models import Assignment, PackUpload, Submission
from .sync import PackInvalid, load_meta, sync_pack

UPLOAD_SOURCE = "upload #"  # Assignment.pack_source of an uploaded pack: "upload #<id> <file name>"
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class PackRejected(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def uploads_allowed(user) -> bool:
    """settings.PACK_UPLOADS: "superusers" (the default: a pack's tests.py runs in the trusted
    worker, which can reach the database), "instructors" (any instructor of the course) or "off"."""
    mode = str(settings.PACK_UPLOADS).lower()
    if mode == "off":
        return False
    if mode == "superusers":
        return bool(user.is_superuser)
    return True


def max_pack_bytes() -> int:
    return int(settings.PACK_UPLOAD_MAX_BYTES)


def uploads_root() -> Path:
    return Path(settings.PACK_STORE) / "_uploads"


def _plan(archive: CheckedZip, zip_name: str) -> tuple[str, list[tuple[str, str]]]:
    """(slug, [(path in the zip, relative path inside the pack)]). The zip holds the pack's files at
    its top level, or inside exactly one folder (then named after the pack)."""
    files = [(path, path.split("/")) for path in archive.paths]
    if any(parts == ["assignment.toml"] for _, parts in files):
        stem = PurePosixPath(zip_name).stem
        slug = re.sub(r"-v?\d+(\.\d+)*$", "", stem.lower())  # tokenization-v2.zip -> tokenization
        plan = [(path, path) for path, _ in files]
    else:
        tops = {parts[0] for _, parts in files}
        if len(tops) != 1 or not any(parts[1:] == ["assignment.toml"] for _, parts in files):
            raise PackRejected(
                "No assignment.toml found: zip the pack's files (assignment.toml, reference.py, tests.py, …) "
                "or the pack's folder."
            )
        slug = tops.pop()
        plan = [(path, "/".join(parts[1:])) for path, parts in files]
    if not SLUG_RE.match(slug):
        raise PackRejected(
            f"“{slug}” cannot name an assignment: use lower-case letters, digits, - and _ "
            "(name the zip or its folder after the pack, e.g. attention.zip)."
        )
    return slug, plan


def _extract(archive: CheckedZip, plan, dest: Path) -> None:
    """Unpack within the policy's budget (grader.intake.ziparchive) into ``dest``."""
    where = dict(plan)
    root = dest.resolve()
    try:
        for path, content in archive.files():
            target = (dest / where[path]).resolve()
            if root not in target.parents:  # the policy refused '..' and absolute paths; belt and braces
                raise PackRejected(f"The zip contains a path that escapes the folder ({path!r}).")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
    except ZipRefused as exc:
        raise PackRejected(exc.message) from None


def receive(course, user, upload, regrade_after: bool = False) -> PackUpload:
    """Check and extract an uploaded pack zip, then queue its self-check. Raises PackRejected;
    on refusal nothing is stored."""
    if upload is None:
        raise PackRejected("Choose a .zip file with the pack.")
    name = Path((upload.name or "").replace("\\", "/")).name or "pack.zip"
    if not name.lower().endswith(".zip"):
        raise PackRejected(f"“{name}” is not a .zip file: zip the pack's folder and upload the zip.")
    limit = max_pack_bytes()
    if upload.size is not None and upload.size > limit:
        raise PackRejected(f"“{name}” is {filesizeformat(upload.size)}; a pack may be at most {filesizeformat(limit)}.")
    if not upload.size:
        raise PackRejected(f"“{name}” is empty.")
    try:  # the one intake: read once within the limit, hashed as it is read, then the zip policy
        data, sha256 = read_bounded(upload, limit)
        archive = open_zip(data, name, pack_policy(limit))
    except SubmissionError:
        raise PackRejected(f"“{name}” is larger than {filesizeformat(limit)}, the limit for a pack.") from None
    except ZipRefused as exc:
        raise PackRejected(exc.message) from None
    uploads_root().mkdir(parents=True, exist_ok=True)
    with archive:
        slug, plan = _plan(archive, name)
        row = PackUpload.objects.create(
            course=course, uploaded_by=user, original_name=name[:255], sha256=sha256,
            size=len(data), slug=slug, regrade_after=regrade_after, staging_path="",
        )
        staging = uploads_root() / str(row.pk) / slug
        try:
            staging.mkdir(parents=True)
            _extract(archive, plan, staging)
            for required in ("assignment.toml", "reference.py", "tests.py"):
                if not (staging / required).is_file():
                    raise PackRejected(f"The pack has no {required}: a pack needs assignment.toml, reference.py and tests.py.")
            try:
                meta, _ = load_meta(staging)
            except PackInvalid as exc:
                raise PackRejected(f"The engine refused the pack: {_short(exc, staging)}") from None
            meta_slug = str(meta.get("slug") or slug)
            if meta_slug != slug:
                raise PackRejected(
                    f"assignment.toml says slug = “{meta_slug}” but the pack is named “{slug}”: rename one of them."
                )
            try:
                total = len(engine_check.expectations(staging))
            except PackError as exc:
                raise PackRejected(f"The pack's self-check cannot run: {_short(exc, staging)}") from None
        except BaseException:
            shutil.rmtree(staging.parent, ignore_errors=True)
            row.delete()
            raise
    row.staging_path = str(staging)
    row.title = str(meta.get("title") or slug)[:200]
    row.queue = "gpu" if meta.get("queue") == "gpu" else "cpu"
    row.total_items = total
    row.message = f"Checking {total} file(s): reference, starter, mutants and solutions."
    row.save()
    pk, queue = row.pk, row.queue

    jobs.on_commit(lambda: dispatch.send(dispatch.CHECK_PACK_UPLOAD, [pk], queue))
    return row


def _short(exc, staging: Path) -> str:
    """An engine message without the server's storage paths."""
    return str(exc).replace(str(staging.resolve()) + "/", "").replace(str(staging) + "/", "").replace(str(staging.resolve()), ".").replace(str(staging), ".")


def check_and_install(upload_id: int) -> str:
    """The self-check and, if it passes, the install. Called by the Celery task."""
    row = PackUpload.objects.select_related("course").get(pk=upload_id)
    if row.is_final:
        return row.status
    staging = Path(row.staging_path)
    items = []
    try:
        todo = engine_check.expectations(staging)
        for item in todo:
            res = engine_check.check_item(staging, item)
            items.append({
                "file": res["file"], "expected": res["expected"], "score": res["score"], "max_score": res["max_score"],
                "ok": bool(res["ok"]), "problem": _short(res["problem"], staging),
                "message": _short(str((res.get("result") or {}).get("message") or ""), staging)[:500],
            })
            PackUpload.objects.filter(pk=row.pk).update(items=items, message=f"Checked {len(items)} of {len(todo)} file(s)…")
    except (PackError, OSError) as exc:
        return _finish(row, PackUpload.Status.ERROR, items, f"The self-check could not run: {_short(exc, staging)}")
    bad = [i for i in items if not i["ok"]]
    if bad:
        shown = "; ".join(f"{i['file']}: {i['problem']}" for i in bad[:5])
        return _finish(row, PackUpload.Status.FAILED, items,
                       f"{len(bad)} of {len(items)} expectation(s) failed, so the pack was not installed: {shown}")
    return install(row, items)


def install(row: PackUpload, items: list) -> str:
    staging = Path(row.staging_path)
    with transaction.atomic():
        old = Assignment.objects.filter(course=row.course, slug=row.slug).values_list("pack_hash", flat=True).first()
        assignment, what = sync_pack(row.course, staging)
        # The staging folder goes away; a re-sync reads the trusted copy the upload installed.
        source = f"{UPLOAD_SOURCE}{row.pk} {row.original_name}"[:500]
        Assignment.objects.filter(pk=assignment.pk).update(pack_source=source)
        assignment.pack_source = source
        if old is None:
            message = f"All {len(items)} expectation(s) hold. Installed as a new assignment “{assignment.title}”."
        elif old == assignment.pack_hash:
            message = f"All {len(items)} expectation(s) hold. The pack is identical to the installed one ({old[:12]})."
        else:
            message = (f"All {len(items)} expectation(s) hold. Pack updated: {old[:12]} → {assignment.pack_hash[:12]}."
                       + ("" if row.regrade_after else " Regrade to apply it to earlier submissions."))
        if row.regrade_after:
            n = services.regrade(Submission.objects.filter(assignment=assignment))
            message += f" {n} submission(s) queued for regrading."
        row.assignment = assignment
        row.pack_hash = assignment.pack_hash
        row.save(update_fields=["assignment", "pack_hash"])
        result = _finish(row, PackUpload.Status.INSTALLED, items, message)
    return result


def _finish(row: PackUpload, status: str, items: list, message: str) -> str:
    PackUpload.objects.filter(pk=row.pk).update(status=status, items=items, message=message[:5000], finished_at=timezone.now())
    if row.staging_path:  # the extracted copy: installed packs live on under PACK_STORE/<slug>/<hash>/
        shutil.rmtree(Path(row.staging_path).parent, ignore_errors=True)
    return status
