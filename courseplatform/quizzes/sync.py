"""`manage.py sync_course <root>`: load the quiz banks under <root>/quizzes/*.toml into the course.

Idempotent. A bank file is checked completely before anything is written, and each file is
written in one transaction: a broken file changes nothing (its error names the file and line)
and does not stop the other files. Questions are matched by their `id`: an edited question is
updated in place with version + 1 (attempts keep the version they saw until an instructor
regrades), a question removed from the file is deactivated (old attempts keep it).
"""
from __future__ import annotations

import sys
from pathlib import Path

from django.db import transaction

from courseplatform.core import hooks

from . import bank, codepacks
from .models import Question, Quiz, QuizSource

QUIZ_FIELDS = ("title", "description", "time_limit_minutes", "max_attempts", "review", "grading",
               "shuffle_questions", "shuffle_choices", "published")


def bank_files(root: Path) -> list[Path]:
    folder = Path(root) / "quizzes"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.toml") if p.is_file())


def sync(course, root, stdout=None) -> dict:
    stdout = stdout or sys.stdout
    summary = {"created": 0, "updated": 0, "unchanged": 0, "errors": []}
    problems: list[str] = []
    for path in bank_files(Path(root)):
        try:
            parsed = bank.load_bank_file(path)
            _check_packs(parsed, Path(root) / "quizzes", path.name)
            codepacks.publish_bank(parsed, Path(root))  # code questions grade from the pack store
        except bank.BankError as exc:
            summary["errors"].append(str(exc))
            stdout.write(f"quizzes: ERROR {exc} (file skipped, nothing changed)\n")
            hooks.part_failed(f"quiz bank {path.name}", exc, problems)
            continue
        result = apply_bank(course, parsed, source_path=str(path.relative_to(Path(root))))
        stdout.write(
            f"quizzes: {parsed['quiz']['slug']}: {result['quiz']} quiz, {result['new']} new, "
            f"{result['changed']} changed, {result['removed']} removed, {result['same']} unchanged questions\n"
        )
        if result["kept"]:
            stdout.write(
                f"quizzes: {parsed['quiz']['slug']}: NOT overwritten, edited on the web since the last sync: "
                f"{', '.join(result['kept_keys'])}. Copy the web version (the question editor shows its TOML) "
                f"into {path.name} to sync this file again.\n"
            )
            summary.setdefault("kept", []).extend(f"{path.name}:{k}" for k in result["kept_keys"])
        summary["created" if result["quiz"] == "new" else "updated" if result["new"] + result["changed"]
                + result["removed"] else "unchanged"] += 1
    if problems:  # the good files are synced; the broken ones are logged and named (sync_course exits 1)
        raise hooks.PartsFailed(problems, result=summary)
    return summary


def _check_packs(parsed, base: Path, where: str) -> None:
    for spec in parsed["questions"]:
        if spec["type"] == "code" and not (base / spec["pack"] / "assignment.toml").is_file():
            raise bank.BankError(f"code question {spec['id']}: no pack at quizzes/{spec['pack']}/assignment.toml",
                                 where=where)


@transaction.atomic
def apply_bank(course, parsed: dict, *, source_path: str = "", source: str = QuizSource.BANK) -> dict:
    from django.utils.dateparse import parse_datetime

    meta = parsed["quiz"]
    quiz = Quiz.objects.select_for_update().filter(course=course, slug=meta["slug"]).first()
    status = "existing"
    if quiz is None:
        # A new quiz starts as a draft unless its bank says `published = true`: students must not see
        # a quiz before the instructor has set its dates.
        quiz = Quiz(course=course, slug=meta["slug"], source=source, published=False)
        status = "new"
    for field in QUIZ_FIELDS:
        if field in meta:
            setattr(quiz, field, meta[field])
    if "opens" in meta:
        quiz.opens_at = parse_datetime(meta["opens"])
    if "closes" in meta:
        quiz.closes_at = parse_datetime(meta["closes"])
    quiz.source_path = source_path or quiz.source_path
    quiz.save()
    counts = {"new": 0, "changed": 0, "same": 0, "removed": 0, "kept": 0, "kept_keys": []}
    existing = {q.key: q for q in quiz.questions.all()}
    seen = set()
    for position, spec in enumerate(parsed["questions"], start=1):
        seen.add(spec["id"])
        digest = bank.spec_hash(spec)
        q = existing.get(spec["id"])
        if q is None:
            Question.objects.create(quiz=quiz, key=spec["id"], position=position, kind=spec["type"],
                                    points=spec["points"], spec=spec, content_hash=digest)
            counts["new"] += 1
            continue
        changed_fields = []
        if q.edited_on_web:
            if q.content_hash == digest:  # the bank file caught up with the web edit
                q.edited_on_web = False
                changed_fields.append("edited_on_web")
            else:  # one source of truth: a web edit is not overwritten by an older bank entry
                counts["kept"] += 1
                counts["kept_keys"].append(spec["id"])
                digest = q.content_hash
        if q.content_hash != digest:
            q.spec, q.kind, q.points, q.content_hash = spec, spec["type"], spec["points"], digest
            q.version += 1
            changed_fields += ["spec", "kind", "points", "content_hash", "version"]
            counts["changed"] += 1
        if q.position != position or not q.active:
            if not q.active and not changed_fields:
                counts["changed"] += 1
            q.position, q.active = position, True
            changed_fields += ["position", "active"]
        if changed_fields:
            q.save(update_fields=changed_fields + ["updated_at"])
        else:
            counts["same"] += 1
    for key, q in existing.items():
        if key not in seen and q.active:
            q.active = False
            q.save(update_fields=["active", "updated_at"])
            counts["removed"] += 1
    return {"quiz": status, "quiz_obj": quiz, **counts}
