"""A score histogram as inline SVG, drawn on the server (no JavaScript, no CDN)."""
from __future__ import annotations

from django.utils.html import escape
from django.utils.safestring import mark_safe


def bins_for(scores: list[float], max_points: float, bins: int = 10) -> list[dict]:
    max_points = max_points or max(scores or [1.0]) or 1.0
    width = max_points / bins
    counts = [0] * bins
    for s in scores:
        idx = int(min(bins - 1, max(0, s // width if width else 0)))
        if s >= max_points:
            idx = bins - 1
        counts[idx] += 1
    out = []
    for i, c in enumerate(counts):
        lo, hi = i * width, (i + 1) * width
        out.append({"lo": lo, "hi": hi, "count": c, "label": f"{lo:g}–{hi:g}" + ("" if i < bins - 1 else " (incl.)")})
    return out


def histogram_svg(scores: list[float], max_points: float, bins: int = 10, title: str = "Score distribution") -> str:
    data = bins_for(scores, max_points, bins)
    w, h, pad_l, pad_b, pad_t = 560, 220, 36, 40, 16
    plot_w, plot_h = w - pad_l - 10, h - pad_b - pad_t
    top = max([d["count"] for d in data] + [1])
    bar_w = plot_w / len(data)
    parts = [
        f'<svg class="histogram" role="img" aria-label="{escape(title)}" viewBox="0 0 {w} {h}" '
        f'width="100%" preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{pad_l}" y1="{pad_t + plot_h}" x2="{w - 10}" y2="{pad_t + plot_h}" stroke="#888"/>',
    ]
    for tick in sorted({0, top // 2, top}):
        y = pad_t + plot_h - plot_h * tick / top
        parts.append(f'<text x="{pad_l - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="#555">{tick}</text>')
        parts.append(f'<line x1="{pad_l}" y1="{y:.1f}" x2="{w - 10}" y2="{y:.1f}" stroke="#eee"/>')
    for i, d in enumerate(data):
        bh = plot_h * d["count"] / top
        x = pad_l + i * bar_w + 2
        y = pad_t + plot_h - bh
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar_w - 4:.1f}" height="{bh:.1f}" fill="#3b6ea5" '
            f'data-count="{d["count"]}"><title>{escape(d["label"])}: {d["count"]} student(s)</title></rect>'
        )
        if d["count"]:
            parts.append(
                f'<text x="{x + (bar_w - 4) / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle" font-size="11">{d["count"]}</text>'
            )
        parts.append(
            f'<text x="{x + (bar_w - 4) / 2:.1f}" y="{pad_t + plot_h + 14}" text-anchor="middle" font-size="10" '
            f'fill="#555">{d["lo"]:g}</text>'
        )
    parts.append(
        f'<text x="{pad_l + plot_w / 2:.1f}" y="{h - 6}" text-anchor="middle" font-size="11" fill="#333">'
        f"points (of {max_points:g}); {len(scores)} student(s)</text>"
    )
    parts.append("</svg>")
    return mark_safe("".join(parts))
