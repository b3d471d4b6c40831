"""Per-question statistics of a quiz for staff: how many answered, how many got full marks, the
mean, the most common wrong answer, and how the choices were picked. A service of its own (the
view only renders it)."""
from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from django.utils.html import escape

from . import bank
from .models import Attempt, AttemptQuestion
from .services import quiz_grade


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
    grades: list[float] = field(default_factory=list)  # per student, by the quiz's rule (the histogram)
    regrading: int = 0  # finished attempts whose code answers are being graded again


def _draw(snapshot: dict) -> str:
    """What identifies one student's draw of a parameterised question: its drawn values."""
    return json.dumps(snapshot.get("params") or {}, sort_keys=True, default=str)


def quiz_statistics(quiz) -> QuizStatistics:
    """The statistics of every finished attempt of ``quiz`` (overdue attempts are closed first by the caller)."""
    finished = list(Attempt.objects.filter(quiz=quiz).exclude(state=Attempt.State.OPEN))
    scores = [a.score for a in finished if a.score is not None]
    per_student = defaultdict(list)
    for a in finished:
        per_student[a.student_id].append(a)
    grades = [g for g in (quiz_grade(quiz, attempts) for attempts in per_student.values()) if g is not None]
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
                               "pct": 100.0 * counter[cid] / n if n else 0,
                               "bar": f"{100.0 * counter[cid] / n if n else 0:.1f}"} for cid in labels]
            wrong = [(counter[cid], cid) for cid in labels if not correct.get(cid) and counter[cid]]
            if wrong:
                count, cid = max(wrong)
                row["wrong_top"] = {"html": labels[cid], "count": count}
        elif q.kind == "matching":
            row["pairs"] = matching_pair_stats(q.spec, items)
        elif q.kind in ("numeric", "short", "truefalse"):
            # Per-student numbers: an answer is only the same mistake as another on the same draw
            # (0.42 may be right for one student and wrong for the next), so wrong answers are
            # counted per (draw, answer) and the top one is shown with its draw's correct answer.
            per_draw = row["parameterised"] and q.kind == "numeric"
            wrong_answers, snapshots = Counter(), {}
            for i in graded:
                if abs(i.score - i.max_score) > 1e-9 and i.response:
                    r = i.response
                    text = str(r.get("raw", r.get("text", r.get("value"))))[:40]
                    key = (_draw(i.snapshot) if per_draw else "", text)
                    wrong_answers[key] += 1
                    snapshots.setdefault(key, i.snapshot)
            if wrong_answers:
                (draw, text), count = wrong_answers.most_common(1)[0]
                row["wrong_top"] = {"html": escape(text), "count": count}  # student input: escaped
                if per_draw:
                    row["wrong_top"]["same_draw"] = True
                    row["wrong_top"]["correct_html"] = bank.correct_answer_text(snapshots[(draw, text)])
        rows.append(row)
    return QuizStatistics(
        rows=rows, n_attempts=len(scores),
        mean=statistics.fmean(scores) if scores else None,
        median=statistics.median(scores) if scores else None,
        in_progress=Attempt.objects.filter(quiz=quiz, state=Attempt.State.OPEN).count(),
        grades=grades,
        regrading=sum(1 for a in finished if a.pending and a.regraded_at),
    )
