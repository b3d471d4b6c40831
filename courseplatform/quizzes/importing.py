"""GIFT import shared by the management command and the instructor upload form."""
from __future__ import annotations

import re

from .gift import parse_gift
from .models import Quiz, QuizSource
from .sync import apply_bank


def import_gift(course, text: str, *, slug: str, title: str = "", points: float = 1.0, source_path: str = ""):
    """Parse everything first, then write in one transaction. A question the importer cannot take is
    skipped: the result's "skipped" lists them (GiftError: line, start of the question, why). Raises
    GiftImportErrors only when no question at all can be imported (nothing is written then)."""
    slug = slug.strip().lower()
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,63}", slug):
        raise ValueError("The quiz slug must be lowercase letters, digits and '-'.")
    existing = Quiz.objects.filter(course=course, slug=slug).first()
    if existing and existing.source != QuizSource.GIFT:
        raise ValueError(f"A quiz {slug!r} already exists and comes from a bank file; choose another slug.")
    parsed = parse_gift(text, default_points=points)
    meta = {"slug": slug, "title": title or (existing.title if existing else slug.replace("-", " ").title())}
    result = apply_bank(course, {"quiz": meta, "questions": parsed.questions},
                        source_path=source_path or "GIFT upload", source=QuizSource.GIFT)
    result["skipped"] = parsed.skipped
    return result["quiz_obj"], result
