"""Per-question statistics of a quiz for staff: how many answered, how many got full marks, the
mean, the most common wrong answer, and how the choices were picked. A service of its own (the
view only renders it)."""
from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass

from django.utils.html import escape

from . import bank
from .models import Attempt, AttemptQuestion


def matching_pair_stats(spec: dict, items) -> list[dict]:
    """Per pair of a matching question (its current items): of the attempts that showed the item, the
    share that matched it right (each attempt against its own key), and the most frequent wrong match."""
    out = []
    for pair in spec["pairs"]:
        shown = right = 0
        wrong = Counter()
        for i in items:
            snap = i.snapshot
            if pair["id"] not in snap.get("key", {}):
                continue
            shown += 1
            given = ((i.response or {}).get("matches") or {}).get(pair["id"])
            if given == snap["key"][pair["id"]]:
                right += 1
            elif given:
                text = next((o["text"] for o in snap["options"] if o["id"] == given), None)
                if text is not None:
                    wrong[text] += 1
        top = wrong.most_common(1)
        out.append({"id": pair["id"], "html": bank.render_inline(pair["left"]), "right": pair["right"],
                    "n": shown, "right_count": right, "pct": 100.0 * right / shown if shown else 0.0,
                    "wrong_top": {"text": top[0][0], "count": top[0][1]} if top else None})
    return out


@dataclass
class QuizStatistics:
    rows: list[dict]
    n_attempts: int
    mean: float | None
    median: float | None
    in_progress: int


def quiz_statistics(quiz) -> QuizStatistics:
    """The statistics of every finished attempt of ``quiz`` (overdue attempts are closed first by the caller)."""
    finished = Attempt.objects.filter(quiz=quiz).exclude(state=Attempt.State.OPEN)
    scores = [a.score for a in finished if a.score is not None]
    items_by_q = defaultdict(list)
    for item in AttemptQuestion.objects.filter(attempt__in=finished).only(
            "question_id", "score", "max_score", "response", "snapshot", "version"):
        items_by_q[item.question_id].append(item)
    rows = []
    for q in quiz.questions.order_by("-active", "position"):
        items = items_by_q.get(q.pk, [])
        n = len(items)
        graded = [i for i in items if i.score is not None]
        full = sum(1 for i in graded if abs(i.score - i.max_score) < 1e-9)
        answered = sum(1 for i in items if i.response is not None)
        row = {"q": q, "n": n, "answered": answered, "full": full,
               "percent_correct": (100.0 * full / len(graded)) if graded else None,
               "mean": (sum(i.score for i in graded) / len(graded)) if graded else None,
               "text_html": None, "parameterised": False,
               "choices": [], "pairs": [], "wrong_top": None, "old_versions": sum(1 for i in items if i.version != q.version)}
        row["text_html"], row["parameterised"] = bank.example_text_html(q.spec)
        if q.kind in ("single", "multiple"):
            counter = Counter()
            labels, correct = {}, {}
            for i in items:
                for c in i.snapshot.get("choices", []):
                    labels.setdefault(c["id"], c["html"])
                    correct.setdefault(c["id"], c["correct"])
                r = i.response or {}
                for cid in r.get("choices", [r["choice"]] if r.get("choice") else []):
                    counter[cid] += 1
            for c in q.spec["choices"]:
                labels.setdefault(c["id"], bank.render_inline(c["text"]))
                correct[c["id"]] = c["correct"]
            row["choices"] = [{"id": cid, "html": labels[cid], "correct": correct.get(cid), "count": counter[cid],
                               "pct": 100.0 * counter[cid] / n if n else 0} for cid in labels]
            wrong = [(counter[cid], cid) for cid in labels if not correct.get(cid) and counter[cid]]
            if wrong:
                count, cid = max(wrong)
                row["wrong_top"] = {"html": labels[cid], "count": count}
        elif q.kind == "matching":
            row["pairs"] = matching_pair_stats(q.spec, items)
        elif q.kind in ("numeric", "short", "truefalse"):
            wrong_answers = Counter()
            for i in graded:
                if abs(i.score - i.max_score) > 1e-9 and i.response:
                    r = i.response
                    wrong_answers[str(r.get("raw", r.get("text", r.get("value"))))[:40]] += 1
            if wrong_answers:
                text, count = wrong_answers.most_common(1)[0]
                row["wrong_top"] = {"html": escape(text), "count": count}  # student input: escaped
        rows.append(row)
    return QuizStatistics(
        rows=rows, n_attempts=len(scores),
        mean=statistics.fmean(scores) if scores else None,
        median=statistics.median(scores) if scores else None,
        in_progress=Attempt.objects.filter(quiz=quiz, state=Attempt.State.OPEN).count(),
    )
