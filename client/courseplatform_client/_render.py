"""The feedback of a submission or check as text (terminal) or HTML (notebook cell output).

Both show the same content as the site's page: the state, the score, the message, the notes,
and each test with its points and message. Hidden tests arrive from the site already redacted
("Hidden test 1", no message): they are shown as points only. Everything from the server is
cleaned of control characters, and HTML-escaped in the HTML form.
"""
from __future__ import annotations

import html
from datetime import datetime

from ._text import clean_line, clean_text

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")  # as the site writes them (English, any locale)

MARKS = {"passed": "PASS", "failed": "FAIL", "error": "ERR ", "timeout": "TIME"}
COLOURS = {"passed": "#1a7f37", "failed": "#b35900", "error": "#c62828", "timeout": "#c62828",
           "graded": "#1a7f37", "queued": "#555", "running": "#0b5cad"}


def fmt(x):
    if x is None:
        return "-"
    try:
        return "%g" % round(float(x), 2)
    except (TypeError, ValueError):
        return clean_line(x, 20)


def when(value, tz=None):
    """A time from the site as its pages show it: the course's wall-clock time ("Fri 13.11.2026 23:59")
    and the course's zone. The site sends ISO 8601 in the course's zone with its offset, and the zone's
    name (time_zone); without a name the offset is shown."""
    if not value:
        return "-"
    try:
        d = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return clean_line(value, 60)
    if tz:
        zone = clean_line(tz, 60)
    elif d.utcoffset() is not None:
        zone = "UTC" + d.strftime("%z")
    else:
        zone = "server time"
    return "%s %s (%s)" % (DAYS[d.weekday()], d.strftime("%d.%m.%Y %H:%M"), zone)


def title(sub):
    what = "Check (visible tests only, not an attempt)" if sub.get("kind_label") == "check" else \
        "Attempt %s" % fmt(sub.get("attempt"))
    return "%s/%s %s (%s)" % (clean_line(sub.get("course"), 100), clean_line(sub.get("assignment"), 100), what,
                              clean_line(sub.get("filename"), 200))


def text(sub):
    state = clean_line(sub.get("state"), 20)
    lines = ["", title(sub) + ": " + state.upper() +
             ("  score %s / %s" % (fmt(sub.get("score")), fmt(sub.get("max_score"))) if state == "graded" else "")]
    if sub.get("submitted_at"):
        lines.append("  submitted " + when(sub["submitted_at"], sub.get("time_zone")))
    if sub.get("message"):
        lines += ["  " + ln for ln in clean_text(sub["message"], 5000).splitlines()]
    for note in sub.get("notes") or []:
        lines.append("  note: " + clean_line(note, 1000))
    tests = sub.get("tests") or []
    if tests:
        names = [clean_line(t.get("name"), 60) for t in tests]
        width = max(len(n) for n in names)
        lines.append("")
        for t, name in zip(tests, names):
            status = clean_line(t.get("status"), 10)
            mark = MARKS.get(status, status[:4].upper())
            hidden = " (hidden)" if not t.get("visible", True) else ""
            lines.append("  %s  %s  %5s / %s%s" % (mark, name.ljust(width), fmt(t.get("score")),
                                                   fmt(t.get("max_score")), hidden))
            if t.get("message") and status != "passed" and t.get("visible", True):
                for ln in clean_text(t["message"], 4000).splitlines()[:8]:
                    lines.append("          " + ln)
    if sub.get("url"):
        lines += ["", "  " + clean_line(sub["url"], 500)]
    return "\n".join(lines) + "\n"


def _e(value, limit=2000):
    return html.escape(clean_text(value, limit), quote=True)


def html_table(sub, note=None):
    state = clean_line(sub.get("state"), 20)
    colour = COLOURS.get(state, "#c62828")
    parts = ['<div class="courseplatform-feedback" data-state="%s" style="font-family:sans-serif;max-width:60em">'
             % html.escape(state, quote=True)]
    parts.append('<div style="font-weight:bold;margin:.3em 0">%s: <span class="cp-state" style="color:%s">%s</span>'
                 % (_e(title(sub)), colour, _e(state)))
    if state == "graded":
        parts.append(' &nbsp; score <span class="cp-score">%s / %s</span>'
                     % (_e(fmt(sub.get("score"))), _e(fmt(sub.get("max_score")))))
    parts.append("</div>")
    if state in ("queued", "running"):
        parts.append('<div class="cp-pending" style="color:#555">%s</div>'
                     % _e(note or ("Waiting for a grader..." if state == "queued" else "Grading...")))
    elif sub.get("message"):
        parts.append('<div class="cp-message" style="white-space:pre-wrap;margin:.3em 0">%s</div>'
                     % _e(sub["message"], 5000))
    notes = sub.get("notes") or []
    if notes:
        parts.append('<ul class="cp-notes" style="color:#555;font-size:90%%">%s</ul>'
                     % "".join("<li>%s</li>" % _e(n, 1000) for n in notes))
    tests = sub.get("tests") or []
    if tests and state not in ("queued", "running"):
        parts.append('<table class="cp-tests" style="border-collapse:collapse;margin:.3em 0">'
                     '<thead><tr><th style="text-align:left;padding:2px 8px">Test</th>'
                     '<th style="text-align:left;padding:2px 8px">Result</th>'
                     '<th style="text-align:right;padding:2px 8px">Points</th></tr></thead><tbody>')
        for t in tests:
            status = clean_line(t.get("status"), 10)
            visible = t.get("visible", True)
            msg = ""
            if visible and t.get("message") and status != "passed":
                msg = '<div class="cp-test-message" style="white-space:pre-wrap;color:#444;font-size:90%%">%s</div>' \
                      % _e(t["message"], 4000)
            parts.append('<tr class="cp-test" data-status="%s"><td style="padding:2px 8px;vertical-align:top">%s%s%s</td>'
                         '<td style="padding:2px 8px;vertical-align:top;color:%s">%s</td>'
                         '<td style="padding:2px 8px;vertical-align:top;text-align:right">%s / %s</td></tr>'
                         % (html.escape(status, quote=True), _e(t.get("name"), 300),
                            "" if visible else ' <span style="color:#777">(hidden)</span>', msg,
                            COLOURS.get(status, "#c62828"), _e(status),
                            _e(fmt(t.get("score"))), _e(fmt(t.get("max_score")))))
        parts.append("</tbody></table>")
    if sub.get("url"):
        url = clean_line(sub["url"], 500)
        if url.startswith(("http://", "https://")):
            parts.append('<div style="font-size:90%%"><a href="%s" target="_blank" rel="noopener">%s</a></div>'
                         % (html.escape(url, quote=True), html.escape(url)))
    parts.append("</div>")
    return "".join(parts)


def html_error(message):
    return ('<div class="courseplatform-error" style="font-family:sans-serif;color:#c62828">'
            "courseplatform: %s</div>" % _e(message, 2000))
