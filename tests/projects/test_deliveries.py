from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from courseplatform.projects import services
from courseplatform.projects.models import Delivery, DeliveryVersion, MilestoneGrade
from courseplatform.projects.services import ProjectError

from .conftest import GOOD_REVIEW, PDF, md_upload, pdf_upload

pytestmark = pytest.mark.django_db


def durl(course, m, g, name="delivery"):
    return reverse(f"projects:{name}", args=[course.slug, m.pk, g.pk])


@pytest.fixture
def team(make_group, student):
    return make_group("Team A", [student])


@pytest.fixture
def rivals(make_group, other_student):
    return make_group("Team B", [other_student])


def test_deliver_file_then_replace_keeps_versions(course, student, team, make_milestone, client_for, media_root):
    m = make_milestone()
    c = client_for(student)
    r = c.post(durl(course, m, team), {"file": pdf_upload()}, follow=True)
    assert "Version 1 delivered." in r.content.decode()
    r = c.post(durl(course, m, team), {"file": pdf_upload("report-v2.pdf", PDF + b"v2")}, follow=True)
    assert "Version 2 delivered." in r.content.decode()
    d = Delivery.objects.get(milestone=m, group=team)
    versions = list(d.versions.order_by("number"))
    assert [v.number for v in versions] == [1, 2]
    assert [v.is_late for v in versions] == [False, False]
    assert versions[1].filename == "report-v2.pdf"
    assert all((media_root / v.file.name).exists() for v in versions)
    assert str(media_root) in versions[0].file.path
    body = c.get(durl(course, m, team)).content.decode()
    assert "v1" in body and "v2" in body and "(current)" in body


def test_late_delivery_flagged_when_allowed(course, student, team, make_milestone):
    m = make_milestone(due=timezone.now() - timedelta(hours=2), allow_late=True)
    v = services.deliver(m, team, student, upload=pdf_upload())
    assert v.is_late
    st = services.state_for_group(m, team)
    assert st.state == "late"


def test_late_delivery_refused_when_not_allowed(course, student, team, make_milestone, client_for):
    m = make_milestone(due=timezone.now() - timedelta(minutes=1), allow_late=False)
    r = client_for(student).post(durl(course, m, team), {"file": pdf_upload()})
    assert r.status_code == 400
    assert "does not accept late deliveries" in r.content.decode()
    assert not DeliveryVersion.objects.exists()


def test_delivering_for_a_group_one_is_not_in(course, student, team, rivals, make_milestone, client_for,
                                              instructor):
    m = make_milestone()
    r = client_for(student).post(durl(course, m, rivals), {"file": pdf_upload()})
    assert r.status_code == 403
    assert "You are not a member of this group" in r.content.decode()
    with pytest.raises(ProjectError, match="not a member"):
        services.deliver(m, rivals, student, upload=pdf_upload())
    assert client_for(instructor).post(durl(course, m, team), {"file": pdf_upload()}).status_code == 403
    assert not DeliveryVersion.objects.exists()


@pytest.mark.parametrize("bad,message", [
    ("javascript:alert(1)", "must start with https://"),
    ("JaVaScRiPt:alert(document.cookie)//https://github.com", "must start with https://"),
    ("file:///etc/passwd", "must start with https://"),
    ("data:text/html,<script>alert(1)</script>", "must start with https://"),
    ("ftp://example.org/repo", "must start with https://"),
    ("github.com/team/repo", "must start with https://"),
    ("https://", "needs a host name"),
    ("https://user:token@github.com/team/repo", "Remove the user name or token"),
    ("https://github.com/team/repo\n<script>", "spaces or control characters"),
    ("https://exa mple.com", "spaces or control characters"),
    ("http://-invalid-/x", "not a valid web address"),
    ("", "Enter the repository URL"),
])
def test_repository_url_hostile_and_invalid_refused(bad, message):
    with pytest.raises(ProjectError, match=message):
        services.clean_repo_url(bad)


def test_repository_url_accepted_and_delivered(course, student, team, make_milestone, client_for):
    assert services.clean_repo_url(" https://github.com/team/project ") == "https://github.com/team/project"
    assert services.clean_repo_url("http://gitlab.example.edu:8080/x/y.git") == "http://gitlab.example.edu:8080/x/y.git"
    m = make_milestone(deliverable="url")
    c = client_for(student)
    r = c.post(durl(course, m, team), {"repo_url": "javascript:alert(1)"})
    assert r.status_code == 400 and "must start with https://" in r.content.decode()
    assert 'value="javascript:alert(1)"' in r.content.decode()  # nothing typed is lost
    c.post(durl(course, m, team), {"repo_url": "https://github.com/team/project"})
    v = DeliveryVersion.objects.get()
    assert v.repo_url == "https://github.com/team/project" and not v.file
    page = c.get(durl(course, m, team)).content.decode()
    assert 'href="https://github.com/team/project" rel="nofollow noopener noreferrer"' in page


def test_both_requires_url_and_file(course, student, team, make_milestone):
    m = make_milestone(deliverable="both")
    with pytest.raises(ProjectError, match="Upload a file"):
        services.deliver(m, team, student, repo_url="https://github.com/a/b")
    with pytest.raises(ProjectError, match="repository URL"):
        services.deliver(m, team, student, upload=pdf_upload())
    v = services.deliver(m, team, student, repo_url="https://github.com/a/b", upload=pdf_upload())
    assert v.repo_url and v.file


def test_file_size_limit(course, student, team, make_milestone, settings, client_for):
    settings.PROJECT_DELIVERY_MAX_BYTES = 1000
    m = make_milestone()
    r = client_for(student).post(durl(course, m, team), {"file": pdf_upload(data=PDF + b"x" * 2000)})
    assert r.status_code == 400
    assert "The file is 2.0&nbsp;KB; the limit is 1000&nbsp;bytes." in r.content.decode()  # Django's filesizeformat
    assert not DeliveryVersion.objects.exists()
    assert services.deliver(m, team, student, upload=pdf_upload()).size == len(PDF)


@pytest.mark.parametrize("name,data,message", [
    ("report.exe", b"MZ...", "does not accept; upload .pdf, .md"),
    ("report.pdf", b"<html>not a pdf</html>", "not a PDF"),
    ("notes.md", b"\x00\x01binary", "not text"),
    ("notes.md", "héllo".encode("latin-1"), "UTF-8"),
    ("report", PDF, "does not accept"),
    ("empty.pdf", b"", "empty"),
])
def test_file_type_checked(course, student, team, make_milestone, name, data, message):
    m = make_milestone()
    with pytest.raises(ProjectError, match=message):
        services.deliver(m, team, student, upload=SimpleUploadedFile(name, data))


def test_uploaded_name_is_sanitised(course, student, team, make_milestone):
    m = make_milestone()
    v = services.deliver(m, team, student, upload=pdf_upload("../../etc/<evil> name.pdf"))
    assert v.filename == "_evil__name.pdf"
    assert ".." not in v.file.name


def test_literature_review_refused_with_whats_missing(course, student, team, make_milestone, client_for):
    m = make_milestone("lit-review", deliverable="file", file_types="md,txt", min_sources=3)
    c = client_for(student)
    r = c.post(durl(course, m, team), {"text": GOOD_REVIEW})
    body = r.content.decode()
    assert r.status_code == 400
    assert "2 complete source(s) of the 3 required" in body
    assert "Attention Is All You Need" in body  # the check table shows what was found
    assert "Replace recurrence with attention" in body  # the pasted text is kept in the form
    assert not DeliveryVersion.objects.exists()
    m.min_sources = 2
    m.save()
    r = c.post(durl(course, m, team), {"text": GOOD_REVIEW}, follow=True)
    v = DeliveryVersion.objects.get()
    assert v.filename == "literature-review.md" and v.check_report["complete_sources"] == 2
    assert v.file.read().decode() == GOOD_REVIEW


def test_literature_review_as_markdown_file(course, student, team, make_milestone):
    m = make_milestone("lit-review", file_types="md", min_sources=2)
    v = services.deliver(m, team, student, upload=md_upload())
    assert v.check_report["ok"]
    with pytest.raises(ProjectError, match="missing Objective"):
        services.deliver(m, team, student, upload=md_upload(GOOD_REVIEW.replace("**Objective:**", "**Aim:**")))
    with pytest.raises(ProjectError, match="does not accept"):
        services.deliver(m, team, student, upload=pdf_upload())


def test_check_step_htmx_shows_missing_before_submit(course, student, team, rivals, make_milestone, client_for):
    m = make_milestone("lit-review", file_types="md", min_sources=2)
    c = client_for(student)
    bad = GOOD_REVIEW.replace("**Method:** Encoder-decoder transformer trained on WMT14 data.\n", "")
    r = c.post(durl(course, m, team, "delivery_check"), {"text": bad}, HTTP_HX_REQUEST="true")
    body = r.content.decode()
    assert r.status_code == 200 and "<html" not in body
    assert "Not complete yet" in body and "Source 1 (Attention Is All You Need): missing Method" in body
    r = c.post(durl(course, m, team, "delivery_check"), {"file": md_upload()}, HTTP_HX_REQUEST="true")
    assert "Structure complete: 2 sources" in r.content.decode()
    assert not DeliveryVersion.objects.exists()  # checking stores nothing
    assert c.post(durl(course, m, rivals, "delivery_check"), {"text": bad}).status_code == 404


def test_graded_delivery_is_closed(course, student, team, make_milestone, instructor):
    m = make_milestone()
    services.deliver(m, team, student, upload=pdf_upload())
    MilestoneGrade.objects.create(milestone=m, group=team, score=5, graded_by=instructor)
    with pytest.raises(ProjectError, match="already been graded"):
        services.deliver(m, team, student, upload=pdf_upload())


def test_download_only_for_group_members_and_staff(course, student, other_student, team, rivals, ta, outsider,
                                                   make_milestone, client_for):
    m = make_milestone()
    v = services.deliver(m, team, student, upload=pdf_upload())
    link = reverse("projects:download", args=[course.slug, v.pk])
    r = client_for(student).get(link)
    assert r.status_code == 200 and b"".join(r.streaming_content) == PDF
    assert r["Content-Disposition"].startswith("attachment")
    assert client_for(ta).get(link).status_code == 200
    assert client_for(other_student).get(link).status_code == 404
    assert client_for(outsider).get(link).status_code == 404
    # the delivery page of another group is refused too
    assert client_for(other_student).get(durl(course, m, team)).status_code == 404


def test_download_via_other_course_url_refused(course, other_course, student, team, make_milestone, outsider,
                                               client_for):
    from courseplatform.courses.models import Membership

    Membership.objects.create(course=other_course, user=student, role="student")
    m = make_milestone()
    v = services.deliver(m, team, student, upload=pdf_upload())
    assert client_for(student).get(reverse("projects:download", args=[other_course.slug, v.pk])).status_code == 404


def test_student_without_group_sees_milestone_and_prompt(course, other_student, make_milestone, client_for):
    m = make_milestone(instructions="Read **this**. <script>alert(1)</script>")
    r = client_for(other_student).get(reverse("projects:milestone", args=[course.slug, m.pk]))
    body = r.content.decode()
    assert "create or join one" in body
    assert "<strong>this</strong>" in body and "<script>alert(1)" not in body


def test_student_index_lists_states(course, student, team, make_milestone, client_for):
    past = make_milestone("old", due=timezone.now() - timedelta(days=1))
    make_milestone("new")
    services.deliver(make_milestone("done"), team, student, upload=pdf_upload())
    body = client_for(student).get(reverse("projects:index", args=[course.slug])).content.decode()
    assert "missing" in body and "not yet" in body and "on time" in body
    assert past.title in body


# --------------------------------------------------------------------------- the one zip policy


def _zip(entries: dict, mode: int | None = None, compression=None) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression if compression is not None else zipfile.ZIP_DEFLATED) as zf:
        for name, content in entries.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = zf.compression
            if mode is not None:
                info.external_attr = mode << 16
            zf.writestr(info, content)
    return buf.getvalue()


HOSTILE_ZIPS = [
    (_zip({"slides.pdf": b"0" * 5_000_000}), "zip bomb"),
    (_zip({"../../outside.txt": b"x"}), "escapes the folder"),
    (_zip({"/etc/cron.d/x": b"x"}), "absolute path"),
    (_zip({"link": b"/etc/passwd"}, mode=0o120777), "symbolic link"),
    (_zip({"code.py": b"x", "inner.zip": b"PK"}), "another archive"),
    (b"PK\x03\x04" + b"\xff" * 100, "not a valid zip"),
]


@pytest.mark.parametrize("data,message", HOSTILE_ZIPS, ids=["bomb", "traversal", "absolute", "symlink", "nested",
                                                              "garbage"])
def test_a_delivered_zip_goes_through_the_zip_policy_of_submissions(course, student, team, make_milestone,
                                                                    client_for, data, message):
    """A project delivery's zip is refused by the same policy (grader.intake.ziparchive) as a submission's,
    with its message, and nothing is stored."""
    from grader.intake.ziparchive import SUBMISSIONS, ZipRefused, open_zip

    with pytest.raises(ZipRefused) as same:  # the submissions' policy says the same about this zip
        with open_zip(data, "project.zip", SUBMISSIONS) as archive:
            archive.read()
    assert message in same.value.message
    m = make_milestone(file_types="pdf,zip")
    r = client_for(student).post(durl(course, m, team), {"file": SimpleUploadedFile("project.zip", data)})
    assert r.status_code == 400 and message in r.content.decode()
    assert not DeliveryVersion.objects.exists()


def test_a_sound_delivered_zip_is_stored(course, student, team, make_milestone):
    m = make_milestone(file_types="pdf,zip")
    data = _zip({"project/report.pdf": PDF, "project/src/train.py": b"print(1)\n", "project/README.md": b"# x\n"})
    v = services.deliver(m, team, student, upload=SimpleUploadedFile("project.zip", data))
    assert v.size == len(data) and v.filename == "project.zip"
    import hashlib

    assert v.sha256 == hashlib.sha256(data).hexdigest()


def test_a_delivered_zip_keeps_peoples_file_names(course, student, team, make_milestone):
    """A delivery is stored as it is, never unpacked for code: "Report (final).pdf" and non-ASCII
    names pass, while the submissions' policy (names the sandbox imports) still refuses them."""
    from grader.intake.ziparchive import SUBMISSIONS, ZipRefused, open_zip

    m = make_milestone(file_types="pdf,zip")
    data = _zip({"Report (final).pdf": PDF, "Präsentation – Gruppe 3/slides #2.pptx": b"x", "src/train.py": b"1\n"})
    v = services.deliver(m, team, student, upload=SimpleUploadedFile("project.zip", data))
    assert v.size == len(data)
    with pytest.raises(ZipRefused, match="unsupported characters"):
        with open_zip(data, "project.zip", SUBMISSIONS) as archive:
            archive.read()


@pytest.mark.parametrize("name", ["bell\x07.txt", "report:v2.pdf", "what?.pdf", "trailing .pdf ", "pipe|x.pdf"])
def test_a_delivered_zip_refuses_names_no_file_system_takes(course, student, team, make_milestone, name):
    m = make_milestone(file_types="pdf,zip")
    data = _zip({"report.pdf": PDF, name: b"x"})
    with pytest.raises(ProjectError, match="unsupported characters"):
        services.deliver(m, team, student, upload=SimpleUploadedFile("project.zip", data))
    assert not DeliveryVersion.objects.exists()


def test_a_delivered_notebook_is_walked_within_bounds(course, student, team, make_milestone):
    """A deeply nested notebook is refused with a message (the engine's bounded walk), not a crash."""
    m = make_milestone(file_types="pdf,ipynb")
    deep = b'{"cells": ' + b"[" * 30_000 + b"]" * 30_000 + b', "nbformat": 4}'
    with pytest.raises(ProjectError, match="nested too deeply"):
        services.deliver(m, team, student, upload=SimpleUploadedFile("work.ipynb", deep))
