"""Issue 28, item 9: staff (and the group) view a delivered file in the page, not only download it:
text and Markdown and notebooks rendered without script in a sandboxed frame, PDFs inline for the
browser's viewer (real PDF bytes only), images inline (real image bytes only, never SVG)."""
from __future__ import annotations

import json

import pytest
from bs4 import BeautifulSoup
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from .conftest import PDF

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
NOTEBOOK = json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
    {"id": "c1", "cell_type": "markdown", "metadata": {}, "source": "# Results <script>alert(1)</script>"},
    {"id": "c2", "cell_type": "code", "metadata": {}, "execution_count": 1, "source": "print('hi')",
     "outputs": [{"output_type": "display_data", "metadata": {},
                  "data": {"text/html": "<img src=x onerror=alert(1)><b>table</b>"}}]}]})


@pytest.fixture
def world(course, make_milestone, make_group, student_member, instructor):
    from courseplatform.projects import services

    alice, bob = student_member("alice"), student_member("bob")
    m = make_milestone(file_types="pdf,md,txt,png,ipynb,zip,svg")
    a, b = make_group("Team A", [alice]), make_group("Team B", [bob])

    def deliver(name, data, group=a, who=alice):
        return services.deliver(m, group, who, upload=SimpleUploadedFile(name, data))

    return {"m": m, "a": a, "alice": alice, "bob": bob, "instructor": instructor, "deliver": deliver}


def _urls(course, v):
    return (reverse("projects:version_view", args=[course.slug, v.pk]),
            reverse("projects:version_inline", args=[course.slug, v.pk]))


def test_staff_view_markdown_text_and_notebook_inline_without_script(course, world, client_for):
    staff = client_for(world["instructor"])
    md = world["deliver"]("review.md", b"# Review\n\n**bold** <script>alert(1)</script> <img src=x onerror=alert(2)>\n")
    page = staff.get(reverse("projects:delivery", args=[course.slug, world["m"].pk, world["a"].pk])).content.decode()
    view_url, inline_url = _urls(course, md)
    assert view_url in page  # the versions table links the view

    r = staff.get(view_url)
    frame = BeautifulSoup(r.content, "html.parser").select_one("iframe[data-testid=delivery-frame]")
    assert r.status_code == 200 and frame is not None and frame.has_attr("sandbox") and frame["src"] == inline_url

    r = staff.get(inline_url)
    body = r.content.decode()
    assert r.status_code == 200 and r["Content-Type"].startswith("text/html")
    csp = r["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "sandbox" in csp and "script-src" not in csp
    assert "<strong>bold</strong>" in body and "<script" not in body and "onerror" not in body

    txt = world["deliver"]("notes.txt", b"x < y <script>alert(1)</script>")
    body = staff.get(_urls(course, txt)[1]).content.decode()
    assert "&lt;script&gt;" in body and "<script>" not in body

    nb = world["deliver"]("analysis.ipynb", NOTEBOOK.encode())
    r = staff.get(_urls(course, nb)[1])
    body = r.content.decode()
    assert r.status_code == 200 and "Results" in body and "<b>table</b>" in body
    assert "<script" not in body and "onerror" not in body and "sandbox" in r["Content-Security-Policy"]


def test_pdf_and_image_inline_only_when_the_bytes_are_what_the_name_says(course, world, client_for):
    staff = client_for(world["instructor"])
    pdf = world["deliver"]("report.pdf", PDF)
    view_url, inline_url = _urls(course, pdf)
    page = BeautifulSoup(staff.get(view_url).content, "html.parser")
    assert page.select_one("iframe[data-testid=delivery-frame]")["src"] == inline_url
    r = staff.get(inline_url)
    assert r.status_code == 200 and r["Content-Type"] == "application/pdf" and r.content.startswith(b"%PDF-")
    assert r["Content-Disposition"].startswith("inline") and r["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in r["Content-Security-Policy"]

    png = world["deliver"]("plot.png", PNG)
    view_url, inline_url = _urls(course, png)
    assert BeautifulSoup(staff.get(view_url).content, "html.parser").select_one(
        "img[data-testid=delivery-image]")["src"] == inline_url
    r = staff.get(inline_url)
    assert r.status_code == 200 and r["Content-Type"] == "image/png" and "sandbox" in r["Content-Security-Policy"]

    fake = world["deliver"]("fake.png", b"<html><script>alert(1)</script></html>")
    assert staff.get(_urls(course, fake)[1]).status_code == 404
    svg = world["deliver"]("drawing.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>')
    assert staff.get(_urls(course, svg)[1]).status_code == 404
    assert "cannot be shown in the page" in staff.get(_urls(course, svg)[0]).content.decode()


def test_group_members_view_their_own_delivery_and_nobody_elses(course, world, client_for):
    md = world["deliver"]("review.md", b"# Ours\n")
    view_url, inline_url = _urls(course, md)
    assert client_for(world["alice"]).get(view_url).status_code == 200
    assert client_for(world["alice"]).get(inline_url).status_code == 200
    assert client_for(world["bob"]).get(view_url).status_code == 404
    assert client_for(world["bob"]).get(inline_url).status_code == 404
