"""Feedback artifacts: the executed notebook a pack returns (e.g. embeddings_notebook), shown back
to its owner and to staff.

A student's notebook output is hostile HTML: it was produced by the student's code. It is
rendered with nbconvert's HTMLExporter (the `basic` template: cells only, no template scripts),
then cleaned with the site's sanitiser in its "notebook" context (core/markdown.py: an
allow-list of tags and attributes; no <script>, no event handlers, no style attributes, images only as inline data: PNG/JPEG/GIF), and served as its own document
under a Content-Security-Policy that forbids every script and every load but inline data images
(`sandbox` directive included), shown in an <iframe sandbox> on the feedback page. Three walls:
any one of them stops a script.
"""
from __future__ import annotations

import base64
import binascii

from courseplatform.core import markdown

NOTEBOOK_TYPES = ("application/x-ipynb+json",)
IMAGE_TYPES = {"image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff", "image/gif": b"GIF8"}
MAX_RENDER_BYTES = 20 * 1024 * 1024

FRAME_CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src 'none'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'self'; sandbox"
)


def sanitize(html: str) -> str:
    return markdown.sanitize(html, "notebook")


def is_notebook(artifact: dict) -> bool:
    return str(artifact.get("content_type", "")) in NOTEBOOK_TYPES or str(artifact.get("name", "")).endswith(".ipynb")


def image_type(artifact: dict, data: bytes | None = None) -> str | None:
    """The image type if the artifact is an image whose bytes really are one."""
    ctype = str(artifact.get("content_type", ""))
    magic = IMAGE_TYPES.get(ctype)
    if magic is None:
        return None
    if data is not None and not data.startswith(magic):
        return None
    return ctype


def decode(artifact: dict) -> bytes:
    try:
        return base64.b64decode(artifact.get("data_b64") or "", validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the artifact is damaged (not base64)") from None


class NotebookUnreadable(Exception):
    pass


def render(data: bytes) -> str:
    """The sanitized HTML of a notebook's cells (inputs, outputs, plots)."""
    import nbformat
    from nbconvert import HTMLExporter

    if len(data) > MAX_RENDER_BYTES:
        raise NotebookUnreadable("The notebook is too large to show here; download it instead.")
    try:
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
    except Exception as exc:  # not UTF-8, not JSON, not a notebook
        raise NotebookUnreadable(f"The notebook cannot be read ({type(exc).__name__}).") from None
    exporter = HTMLExporter(template_name="basic", sanitize_html=False, exclude_anchor_links=True)
    try:
        body, _ = exporter.from_notebook_node(nb)
    except Exception as exc:
        raise NotebookUnreadable(f"The notebook cannot be rendered ({type(exc).__name__}: {str(exc)[:200]}).") from None
    return sanitize(body)


def highlight_css() -> str:
    from pygments.formatters import HtmlFormatter

    return HtmlFormatter(style="default").get_style_defs(".highlight")


def document(body_html: str, title: str) -> str:
    """A self-contained page for the sandboxed frame (inline styles only)."""
    from django.utils.html import escape

    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{escape(title)}</title><style>{FRAME_STYLE}\n{highlight_css()}</style></head>"
        f"<body><main class=\"notebook\">{body_html}</main></body></html>"
    )


FRAME_STYLE = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;padding:12px 16px;color:#1f2328;background:#fff}
.cell{margin:0 0 14px}
.input_prompt,.prompt{display:none}
.input_area{background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:6px 10px;overflow-x:auto}
pre{margin:0;white-space:pre-wrap;word-break:break-word;font:13px/1.45 ui-monospace,SFMono-Regular,Menlo,monospace}
.output_area{padding:4px 10px;border-left:3px solid #d0d7de;margin-top:4px;overflow-x:auto}
.output_stderr{background:#fff5f5}
.output_error pre{color:#b42318}
img{max-width:100%;height:auto}
table{border-collapse:collapse}td,th{border:1px solid #d0d7de;padding:2px 6px}
.text_cell_render h1{font-size:1.5em}.text_cell_render h2{font-size:1.25em}
"""
