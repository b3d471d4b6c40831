"""Showing a delivered file in the page (staff grading a milestone, and the group itself).

A delivery is untrusted: a student wrote it. What each kind becomes:
  * text (.txt, .py, .csv, ...): escaped, in a <pre>, in a self-contained HTML document;
  * Markdown (.md): rendered by the site's Markdown with the "project" allow-list (no script, no
    event handler, no style attribute, no remote image);
  * notebooks (.ipynb): the same sanitised rendering as the grader's executed notebooks;
  these documents are sent under submissions.notebooks.FRAME_CSP (no script at all, the CSP
  `sandbox`) and the page frames them in <iframe sandbox>;
  * PDF (only bytes that start with %PDF-): sent inline as application/pdf, nosniff, under a CSP
    that allows no script and no framing by other sites, for the browser's own PDF viewer (which
    refuses to run inside a sandboxed frame, so the frame of a PDF carries no sandbox attribute);
  * images (PNG, JPEG, GIF, WebP, checked by their bytes; never SVG, which can carry script):
    inline with `default-src 'none'; sandbox`;
  * anything else (zip, ...): download only.
"""
from __future__ import annotations

import json
from pathlib import PurePosixPath

from django.http import HttpResponse
from django.utils.html import escape

from courseplatform.core import markdown
from courseplatform.submissions import notebooks

MAX_INLINE_BYTES = 20 * 1024 * 1024
TEXT_EXTENSIONS = {"txt", "text", "py", "csv", "tsv", "json", "yaml", "yml", "toml", "tex", "bib", "log", "rst"}
MARKDOWN_EXTENSIONS = {"md", "markdown"}
IMAGE_MAGIC = {
    "png": (b"\x89PNG\r\n\x1a\n", "image/png"),
    "jpg": (b"\xff\xd8\xff", "image/jpeg"),
    "jpeg": (b"\xff\xd8\xff", "image/jpeg"),
    "gif": (b"GIF8", "image/gif"),
    "webp": (b"RIFF", "image/webp"),
}
PDF_CSP = "default-src 'none'; object-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
IMAGE_CSP = "default-src 'none'; sandbox"


def _ext(name: str) -> str:
    return PurePosixPath(name or "").suffix.lower().lstrip(".")


def kind_of(filename: str) -> str | None:
    """text, markdown, notebook, pdf, image, or None (download only), from the file's name."""
    ext = _ext(filename)
    if ext in MARKDOWN_EXTENSIONS:
        return "markdown"
    if ext in TEXT_EXTENSIONS:
        return "text"
    if ext == "ipynb":
        return "notebook"
    if ext == "pdf":
        return "pdf"
    if ext in IMAGE_MAGIC:
        return "image"
    return None


def _frame_document(body: str, title: str) -> HttpResponse:
    response = HttpResponse(notebooks.document(body, title), content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = notebooks.FRAME_CSP
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    response["X-Frame-Options"] = "SAMEORIGIN"
    response.xframe_options_exempt = True  # our own SAMEORIGIN header stays
    return response


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def response_for(filename: str, data: bytes, title: str) -> HttpResponse | None:
    """The inline response for a delivered file's bytes, or None when it cannot be shown safely."""
    kind = kind_of(filename)
    if kind is None or len(data) > MAX_INLINE_BYTES:
        return None
    if kind == "text":
        return _frame_document(f'<pre class="delivery-text">{escape(_text(data))}</pre>', title)
    if kind == "markdown":
        return _frame_document(f'<article class="delivery-md">{markdown.render(_text(data), "project")}</article>', title)
    if kind == "notebook":
        try:
            body = notebooks.render(data)
        except notebooks.NotebookUnreadable as exc:
            body = f"<p>{escape(exc)}</p>"
        except (ValueError, json.JSONDecodeError):
            body = "<p>The notebook cannot be read.</p>"
        return _frame_document(body, title)
    if kind == "pdf":
        if not data.startswith(b"%PDF-"):
            return None
        response = HttpResponse(data, content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="{PurePosixPath(filename).name}"'
        response["Content-Security-Policy"] = PDF_CSP
        response["X-Content-Type-Options"] = "nosniff"
        response["Cache-Control"] = "private, no-store"
        response["X-Frame-Options"] = "SAMEORIGIN"
        response.xframe_options_exempt = True
        return response
    magic, ctype = IMAGE_MAGIC[_ext(filename)]
    if not data.startswith(magic) or (ctype == "image/webp" and data[8:12] != b"WEBP"):
        return None
    return HttpResponse(data, content_type=ctype, headers={
        "X-Content-Type-Options": "nosniff", "Content-Security-Policy": IMAGE_CSP, "Cache-Control": "private, no-store",
    })
