"""A score histogram as inline SVG, drawn on the server (no JavaScript, no CDN).

Bins are half-open ranges [lo, hi), labelled with both ends ("6–7"), and full marks have a bin of
their own (labelled with the maximum, e.g. "10"), so a perfect score is never shown under "9". The
y axis has whole-number ticks at a regular step (1, 2, 5, 10, ...) up to a top that is a multiple of
the step, so no count between two ticks is hidden.
"""
from __future__ import annotations

import math

from django.utils.html import escape
from django.utils.safestring import mark_safe


def _num(x: float) -> str:
    return f"{round(x, 2):g}"


def bins_for(scores: list[float], max_points: float, bins: int = 10) -> list[dict]:
    """bins ranges of equal width below max_points, then one bin for scores of max_points (or more)."""
    max_points = float(max_points or max(scores or [1.0]) or 1.0)
    width = max_points / bins
    counts = [0] * (bins + 1)
    for s in scores:
        if s >= max_points:
            counts[bins] += 1
        else:
            counts[min(bins - 1, max(0, int(s // width)))] += 1
    out = []
    for i in range(bins):
        lo, hi = i * width, (i + 1) * width
        out.append({"lo": lo, "hi": hi, "count": counts[i], "label": f"{_num(lo)}–{_num(hi)}",
                    "title": f"{_num(lo)} to under {_num(hi)} points"})
    out.append({"lo": max_points, "hi": max_points, "count": counts[bins], "label": _num(max_points),
                "title": f"full marks ({_num(max_points)} points)"})
    return out


def y_ticks(top_count: int) -> list[int]:
    """Whole-number ticks from 0 at a 1/2/5×10^k step, at most about 6 of them, the last >= top_count."""
    top_count = max(1, int(top_count))
    raw = top_count / 5
    magnitude = 10 ** max(0, math.floor(math.log10(raw))) if raw >= 1 else 1
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    step = max(1, int(step))
    top = step * math.ceil(top_count / step)
    return list(range(0, top + 1, step))


def histogram_svg(scores: list[float], max_points: float, bins: int = 10, title: str = "Score distribution") -> str:
    data = bins_for(scores, max_points, bins)
    max_points = data[-1]["lo"]
    w, h, pad_l, pad_b, pad_t = 600, 230, 36, 44, 16
    plot_w, plot_h = w - pad_l - 10, h - pad_b - pad_t
    ticks = y_ticks(max(d["count"] for d in data))
    top = ticks[-1]
    bar_w = plot_w / len(data)
    parts = [
        f'<svg class="histogram" role="img" aria-label="{escape(title)}" viewBox="0 0 {w} {h}" '
        f'width="100%" preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{pad_l}" y1="{pad_t + plot_h}" x2="{w - 10}" y2="{pad_t + plot_h}" stroke="#888"/>',
    ]
    for tick in ticks:
        y = pad_t + plot_h - plot_h * tick / top
        parts.append(f'<text class="y-tick" x="{pad_l - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
                     f'fill="#444">{tick}</text>')
        parts.append(f'<line x1="{pad_l}" y1="{y:.1f}" x2="{w - 10}" y2="{y:.1f}" stroke="#eee"/>')
    for i, d in enumerate(data):
        bh = plot_h * d["count"] / top
        x = pad_l + i * bar_w + 2
        y = pad_t + plot_h - bh
        full = i == len(data) - 1
        parts.append(
            f'<rect class="bar{" full-marks" if full else ""}" x="{x:.1f}" y="{y:.1f}" width="{bar_w - 4:.1f}" '
            f'height="{bh:.1f}" fill="{"#1f7a4d" if full else "#3b6ea5"}" data-count="{d["count"]}" '
            f'data-label="{escape(d["label"])}"><title>{escape(d["title"])}: {d["count"]} student(s)</title></rect>'
        )
        if d["count"]:
            parts.append(
                f'<text x="{x + (bar_w - 4) / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle" font-size="11">{d["count"]}</text>'
            )
        parts.append(
            f'<text class="x-label" x="{x + (bar_w - 4) / 2:.1f}" y="{pad_t + plot_h + 14}" text-anchor="middle" '
            f'font-size="10" fill="#444">{escape(d["label"])}</text>'
        )
    parts.append(
        f'<text x="{pad_l + plot_w / 2:.1f}" y="{h - 8}" text-anchor="middle" font-size="11" fill="#333">'
        f"points (of {_num(max_points)}; the last bar is full marks); {len(scores)} student(s)</text>"
    )
    parts.append("</svg>")
    return mark_safe("".join(parts))
