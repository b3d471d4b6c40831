"""Fixtures for the projects tests: milestones, groups, uploads."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

PDF = b"%PDF-1.4\n%test\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"

GOOD_REVIEW = """# Our review

## Source: Attention Is All You Need
**Reference:** Vaswani et al. 2017
**Objective:** Replace recurrence with attention for translation.
**Method:** Encoder-decoder transformer trained on WMT14 data.
**Outcome:** Better BLEU at lower training cost than recurrent models.

## Source: BERT
**Objective:** Learn bidirectional representations for understanding tasks.
**Method:** Masked language modelling and next sentence prediction pretraining.
**Outcome:** New state of the art on GLUE and SQuAD after fine-tuning.
"""


@pytest.fixture(autouse=True)
def media_root(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    return settings.MEDIA_ROOT


@pytest.fixture
def make_milestone(course):
    from courseplatform.projects.models import Milestone, RubricCriterion

    def make(slug="proposal", due=None, rubric=None, course=course, **kw):
        kw.setdefault("title", slug.replace("-", " ").title())
        kw.setdefault("deliverable", "file")
        kw.setdefault("points", Decimal("10"))
        m = Milestone.objects.create(course=course, slug=slug, due=due or timezone.now() + timedelta(days=3), **kw)
        for i, (title, pts) in enumerate(rubric or []):
            RubricCriterion.objects.create(milestone=m, title=title, points=Decimal(str(pts)), order=i,
                                           description=f"About {title}")
        return m

    return make


@pytest.fixture
def make_group(course):
    from courseplatform.projects.models import Group, GroupMember

    def make(name="Team A", members=(), course=course):
        g = Group.objects.create(course=course, name=name)
        for u in members:
            GroupMember.objects.create(course=course, group=g, user=u)
        return g

    return make


@pytest.fixture
def student_member(course, make_user):
    """make more students: student_member('carol')"""
    from courseplatform.courses.models import Membership

    def make(username, **extra):
        u = make_user(username, **extra)
        Membership.objects.create(course=course, user=u, role="student")
        return u

    return make


def pdf_upload(name="report.pdf", data=PDF):
    return SimpleUploadedFile(name, data, content_type="application/pdf")


def md_upload(text=GOOD_REVIEW, name="review.md"):
    return SimpleUploadedFile(name, text.encode(), content_type="text/markdown")
