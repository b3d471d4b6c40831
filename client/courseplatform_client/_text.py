"""Text from the server, made safe to show.

The site cleans what it stores, but the client does not rely on it: before anything reaches a
terminal, every control character (ESC and the rest of C0, DEL, C1 such as CSI, bidirectional
overrides, line/paragraph separators) is shown as a visible escape such as ``\\x1b``, so no
escape sequence can move the cursor, recolour, retitle or hide text. HTML output is escaped with
``html.escape`` on top of this.
"""
from __future__ import annotations

import unicodedata

_BIDI = {0x061C, 0x200E, 0x200F, 0x2028, 0x2029} | set(range(0x202A, 0x202F)) | set(range(0x2066, 0x206A))


def _bad(ch):
    code = ord(ch)
    return (code < 32 or 0x7F <= code <= 0x9F or code in _BIDI
            or unicodedata.category(ch) in ("Cs", "Co", "Cn") and code > 0xFFFF)


def _escape(ch):
    code = ord(ch)
    return "\\x%02x" % code if code < 0x100 else "\\u%04x" % code if code < 0x10000 else "\\U%08x" % code


def clean_text(value, limit=20000):
    """Multi-line text: newlines kept, tabs as spaces, any other control character escaped."""
    text = "" if value is None else str(value)
    text = text.replace("\r\n", "\n").replace("\t", "    ")
    out = []
    for ch in text[:limit]:
        out.append(ch if ch == "\n" or not _bad(ch) else _escape(ch))
    if len(text) > limit:
        out.append(" ...")
    return "".join(out)


def clean_line(value, limit=2000):
    """One line: like clean_text, with newlines turned into spaces."""
    return " ".join(clean_text(value, limit).split("\n"))
