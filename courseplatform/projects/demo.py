"""Demo data: the course plan, groups of demo students (one student left without a group),
deliveries for the past milestones (a literature review among them), some graded, some late.
Idempotent: a second run finds everything in place and changes nothing.

The plan's dates are the real course's (assignments/milestones.toml), moved by people["shift_weeks"]
whole weeks (load_demo: today falls inside the plan; 0 when called without it)."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from . import services, sync
from .models import CriterionScore, Delivery, Group, GroupMember, Milestone, MilestoneGrade

GROUP_NAMES = ["Attention Seekers", "Token Rangers", "Gradient Descenders", "Masked Modelers", "Beam Searchers"]

SOURCES = [
    ("Attention Is All You Need", "Vaswani et al., NeurIPS 2017, https://arxiv.org/abs/1706.03762",
     "Replace recurrence with attention alone for sequence transduction, to train faster and in parallel.",
     "Encoder-decoder Transformer with multi-head scaled dot-product attention, positional encodings, "
     "trained on WMT 2014 English-German and English-French.",
     "New state of the art BLEU (28.4 EN-DE) at a fraction of the training cost; the architecture our project builds on."),
    ("BERT: Pre-training of Deep Bidirectional Transformers", "Devlin et al., NAACL 2019, https://arxiv.org/abs/1810.04805",
     "Learn deep bidirectional representations that transfer to many language understanding tasks.",
     "Transformer encoder pretrained with masked language modelling (15% of tokens) and next sentence prediction.",
     "Fine-tuning one model set new results on GLUE and SQuAD; our classifier starts from a small BERT-family encoder."),
    ("LoRA: Low-Rank Adaptation of Large Language Models", "Hu et al., ICLR 2022, https://arxiv.org/abs/2106.09685",
     "Adapt large pretrained models to new tasks without updating all of their parameters.",
     "Freeze the pretrained weights and train low-rank update matrices injected into the attention projections.",
     "Matches full fine-tuning quality with far fewer trainable parameters; we compare it with full fine-tuning."),
]

# A minimal valid one-page PDF for demo reports.
PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj "
       b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")


def review_markdown(n: int, group_name: str) -> str:
    parts = [f"# Literature review: {group_name}\n"]
    for title, ref, obj, method, outcome in SOURCES[:n]:
        parts.append(f"## Source: {title}\n**Reference:** {ref}\n**Objective:** {obj}\n"
                     f"**Method:** {method}\n**Outcome:** {outcome}\n")
    return "\n".join(parts)


def _place_students(course, students, instructor, stdout):
    """Groups of up to 4; the last student stays without a group."""
    if GroupMember.objects.filter(course=course).exists() or Group.objects.filter(course=course).exists():
        return list(Group.objects.filter(course=course).order_by("id"))
    to_place = list(students[:-1]) if len(students) > 1 else []
    # Groups of three or four (the maximum is 4): several groups make a readable matrix.
    n_groups = max(1, -(-len(to_place) // 3))
    chunks = [to_place[i::n_groups] for i in range(n_groups)]
    groups = []
    for i, chunk in enumerate(c for c in chunks if c):
        name = GROUP_NAMES[i % len(GROUP_NAMES)] + ("" if i < len(GROUP_NAMES) else f" {i + 1}")
        group = services.create_group(course, chunk[0], name)
        for s in chunk[1:]:
            services.join_group(course, s, group.join_code)
        groups.append(group)
    stdout.write(f"projects: {len(groups)} demo groups, {len(students) - len(to_place)} student(s) without a group")
    return groups


def _grade(milestone, group, grader, fraction: float, feedback: str):
    criteria = list(milestone.criteria.all())
    if criteria:
        parts = [(c, (c.points * Decimal(str(fraction)) * 2).quantize(Decimal("1")) / 2) for c in criteria]
        total = sum(p for _, p in parts)
    else:
        parts = []
        total = (Decimal(str(milestone.max_points)) * Decimal(str(fraction)) * 2).quantize(Decimal("1")) / 2
    d = Delivery.objects.filter(milestone=milestone, group=group).first()
    graded_at = min(timezone.now(), milestone.due + timedelta(days=4))
    grade = MilestoneGrade.objects.create(milestone=milestone, group=group, score=total, feedback=feedback,
                                          graded_by=grader, graded_version=d.latest if d else None,
                                          graded_at=graded_at)
    CriterionScore.objects.bulk_create([CriterionScore(grade=grade, criterion=c, points=p) for c, p in parts])


def load(course, people, stdout):
    sync.sync(course, Path(settings.ASSIGNMENTS_DIR), stdout)
    from courseplatform.courses import demo_data

    from .models import ProjectSettings

    weeks = people.get("shift_weeks", 0)
    cfg = ProjectSettings.for_course(course)
    if weeks:  # the sync wrote the real plan's dates: move the demo course's plan with today
        moved = {}
        for m in Milestone.objects.filter(course=course):
            moved[m.due] = demo_data.shifted(m.due, weeks)
            Milestone.objects.filter(pk=m.pk).update(due=moved[m.due])
        if cfg.lock_at in moved:  # the plan's group lock (lock_after a milestone) moves with it, once
            cfg.lock_at = moved[cfg.lock_at]
            cfg.save(update_fields=["lock_at"])
    students = list(people.get("students", []))
    instructor = people.get("instructor")
    if len(students) < 2:
        return
    lock_at, cfg.lock_at = cfg.lock_at, None  # the demo forms groups as if before the lock date
    cfg.save(update_fields=["lock_at"])
    try:
        groups = _place_students(course, students, instructor, stdout)
    finally:
        cfg.lock_at = lock_at
        cfg.save(update_fields=["lock_at"])
    now = timezone.now()
    past = [m for m in Milestone.objects.filter(course=course, due__lt=now).prefetch_related("criteria")
            if m.deliverable != "none"]
    made = 0
    for j, milestone in enumerate(past):
        for i, group in enumerate(groups):
            if Delivery.objects.filter(milestone=milestone, group=group).exists() or \
                    MilestoneGrade.objects.filter(milestone=milestone, group=group).exists():
                continue
            plan = ["graded", "late", "on_time", "missing"][(i + j) % 4]
            if plan == "missing" or (plan == "late" and not milestone.allow_late):
                continue
            members = group.member_users()
            author = members[(i + j) % len(members)]
            when = milestone.due + timedelta(hours=14) if plan == "late" else milestone.due - timedelta(days=1, hours=i)
            if when > now:  # a late delivery still to come (the deadline passed only hours ago)
                continue
            kwargs = {}
            if milestone.wants_url:
                kwargs["repo_url"] = f"https://github.com/llm-course-demo/{group.name.lower().replace(' ', '-')}"
            if milestone.is_literature_review:
                kwargs["text"] = review_markdown(max(milestone.min_sources, 2 + (i % 2)), group.name)
                if milestone.min_sources >= 3:
                    kwargs["text"] = review_markdown(3, group.name)
            elif milestone.wants_file:
                ext = milestone.extensions[0]
                data = PDF if ext == "pdf" else f"# {milestone.title}\n\n{group.name}: notes.\n".encode()
                kwargs["upload"] = SimpleUploadedFile(f"{milestone.slug}.{ext}", data)
            if milestone.is_literature_review and j == 0 and plan == "graded":
                # An earlier, shorter version first: the page shows two versions.
                services.deliver(milestone, group, author, text=review_markdown(2, group.name),
                                 now=when - timedelta(days=2))
            services.deliver(milestone, group, author, now=when, **kwargs)
            made += 1
            if instructor is not None and (plan == "graded" or (plan == "late" and j == 0)):
                fraction = 0.9 if plan == "graded" else 0.7
                feedback = ("Well chosen sources and precise summaries. Connect the outcomes more explicitly "
                            "to your research question." if milestone.is_literature_review else
                            "Solid work. Make the evaluation plan more concrete (metrics, splits, baseline).")
                if plan == "late":
                    feedback += "\n\n*Delivered late.*"
                _grade(milestone, group, instructor, fraction, feedback)
    if made:
        stdout.write(f"projects: {made} demo deliveries for {len(past)} past milestone(s)")
