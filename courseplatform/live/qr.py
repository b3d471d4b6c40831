"""The join QR code as SVG, made on the server (segno, pure Python): no external service, and an
image the site's CSP allows (img-src 'self')."""
from __future__ import annotations

import io

import segno


def svg(text: str) -> bytes:
    out = io.BytesIO()
    segno.make(text, error="m", micro=False).save(out, kind="svg", scale=10, border=2, dark="#000", light="#fff",
                                                   xmldecl=False, svgns=True, title="Join code")
    return out.getvalue()
