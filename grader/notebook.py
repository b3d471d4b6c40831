"""Helpers for drivers that read an executed notebook (the dict returned by execute_notebook)."""
from __future__ import annotations


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def code_cells(nb: dict) -> list[dict]:
    return [c for c in nb.get("cells", []) if isinstance(c, dict) and c.get("cell_type") == "code"]


def cell_text(nb: dict, index: int) -> str:
    """All text output of code cell ``index`` (0-based among code cells; negative counts from the end)."""
    cell = code_cells(nb)[index]
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(_text(out.get("text")))
        elif out.get("output_type") in ("execute_result", "display_data"):
            parts.append(_text(out.get("data", {}).get("text/plain")))
    return "".join(parts)


def stream_text(nb: dict, name: str = "stdout") -> str:
    return "".join(_text(o.get("text")) for c in code_cells(nb) for o in c.get("outputs", [])
                   if o.get("output_type") == "stream" and o.get("name") == name)


def errors(nb: dict) -> list[dict]:
    """[{cell, ename, evalue}] for every code cell that raised."""
    found = []
    for i, c in enumerate(code_cells(nb)):
        for o in c.get("outputs", []):
            if o.get("output_type") == "error":
                found.append({"cell": i, "ename": str(o.get("ename")), "evalue": str(o.get("evalue"))[:500]})
    return found


def images(nb: dict, mime: str = "image/png") -> list[str]:
    """Base64 images (e.g. plots) found in the outputs."""
    return [_text(o["data"][mime]) for c in code_cells(nb) for o in c.get("outputs", [])
            if isinstance(o.get("data"), dict) and mime in o["data"]]
