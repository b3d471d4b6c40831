"""Hostile content: XSS in every place user text is shown, CSV injection, downloads, uploads,
open redirects, mass assignment, path traversal, very large inputs."""
from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert('xss')</script>"
IMG = '<img src=x onerror="alert(1)">'
JS_LINK = "[click me](javascript:alert(1))"
HOSTILE_MD = f"{SCRIPT}\n\n{IMG}\n\n{JS_LINK}\n\n<a href=\"javascript:alert(2)\">x</a> <svg onload=alert(3)>"


_JS_STRING = re.compile(r"'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\"")


class _Scanner(HTMLParser):
    """Collects what a browser would execute: <script> bodies, on* handlers, javascript: URLs, <svg>."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self._in_script = True
        if tag in ("iframe", "object", "embed"):
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            value = (value or "").strip().lower()
            # Our templates quote user text into handlers with |escapejs: inside a JS string it is inert.
            if name.startswith("on") and "alert" in _JS_STRING.sub("''", value):
                self.found.append(f"<{tag} {name}={value!r}>")
            if name in ("href", "src", "action", "formaction", "xlink:href") and value.replace("\t", "").startswith(
                    ("javascript:", "data:text/html", "vbscript:")):
                self.found.append(f"<{tag} {name}={value!r}>")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and "alert" in data:
            self.found.append(f"<script>{data[:60]}")


def assert_inert(html: str | bytes):
    """The page holds no executable form of our payloads (they all call alert)."""
    text = html.decode() if isinstance(html, bytes) else html
    scanner = _Scanner()
    scanner.feed(text)
    scanner.close()
    assert not scanner.found, f"executable markup came through: {scanner.found}"


# --- XSS --------------------------------------------------------------------------------------


def test_group_name_is_escaped_for_everyone(client_for, world):
    from courseplatform.projects.models import Group

    Group.objects.filter(pk=world.group_b.pk).update(name=SCRIPT + IMG)
    pages = [
        (world.instructor, reverse("projects:index", args=["llms"])),
        (world.instructor, reverse("projects:groups", args=["llms"])),
        (world.instructor, reverse("projects:delivery", args=["llms", world.milestone.pk, world.group_b.pk])),
        (world.instructor, reverse("courses:dashboard", args=["llms"])),
        (world.bob, reverse("projects:index", args=["llms"])),
        (world.bob, reverse("courses:dashboard", args=["llms"])),
    ]
    for user, url in pages:
        r = client_for(user).get(url)
        assert r.status_code == 200, url
        assert_inert(r.content)
        if "/projects/" in url:
            assert b"&lt;script&gt;" in r.content, url  # shown, as text


def test_student_creating_a_hostile_group_name_gets_it_escaped(client_for, world):
    from courseplatform.projects.models import Group

    c = client_for(world.carol)
    c.post(reverse("projects:group_leave", args=["llms"]))
    r = c.post(reverse("projects:group_create", args=["llms"]), {"name": IMG}, follow=True)
    assert r.status_code == 200
    assert Group.objects.filter(course=world.course, name=IMG).exists()
    assert_inert(r.content)  # the success message quotes the name


def test_markdown_in_milestone_instructions_and_feedback_is_sanitised(client_for, world):
    from courseplatform.core.markdown import render
    from courseplatform.projects.models import MilestoneGrade

    world.milestone.instructions = HOSTILE_MD
    world.milestone.save()
    MilestoneGrade.objects.filter(pk=world.bob_grade.pk).update(feedback=HOSTILE_MD + "\n\n**well done**")
    out = render(HOSTILE_MD, "project")
    assert_inert(out)
    # A refused link stays visible as its Markdown text; it never becomes a URL.
    assert "href=\"javascript:" not in out and "<a href=\"javascript" not in out
    for user, url in [
        (world.bob, reverse("projects:delivery", args=["llms", world.milestone.pk, world.group_b.pk])),
        (world.alice, reverse("projects:milestone", args=["llms", world.milestone.pk])),
        (world.instructor, reverse("projects:milestone", args=["llms", world.milestone.pk])),
        (world.instructor, reverse("projects:delivery", args=["llms", world.milestone.pk, world.group_b.pk])),
    ]:
        r = client_for(user).get(url, follow=True)
        assert r.status_code == 200
        assert_inert(r.content)
    r = client_for(world.bob).get(reverse("projects:delivery", args=["llms", world.milestone.pk, world.group_b.pk]))
    assert b"<strong>well done</strong>" in r.content  # Markdown still renders


def test_delivery_text_and_check_report_are_escaped(client_for, world):
    """The literature-review check echoes what the group typed: it must come back as text."""
    c = client_for(world.alice)
    url = reverse("projects:delivery_check", args=["llms", world.milestone.pk, world.group_a.pk])
    hostile = f"# {SCRIPT}\n\n## Source: {IMG}\n**Objective:** {SCRIPT}\n"
    r = c.post(url, {"text": hostile, "repo_url": "javascript:alert(1)"})
    assert r.status_code == 200
    assert_inert(r.content)
    assert b"http" in r.content  # the URL problem is reported
    r = c.post(reverse("projects:delivery", args=["llms", world.milestone.pk, world.group_a.pk]),
               {"text": hostile, "repo_url": "https://example.org/x"})
    assert r.status_code == 400
    assert_inert(r.content)


def test_quiz_explanation_and_question_markdown_are_sanitised(client_for, world):
    from courseplatform.quizzes.models import AttemptQuestion
    from courseplatform.quizzes.render import render_markdown

    assert_inert(render_markdown(HOSTILE_MD))
    item = world.alice_item
    snap = dict(item.snapshot)
    snap["text_html"] = render_markdown(HOSTILE_MD)
    snap["explanation_html"] = render_markdown(HOSTILE_MD)
    AttemptQuestion.objects.filter(pk=item.pk).update(snapshot=snap)
    r = client_for(world.alice).get(reverse("quizzes:take", args=["llms", world.alice_attempt.pk]))
    assert r.status_code == 200
    assert_inert(r.content)


def test_math_inside_an_attribute_cannot_break_out():
    from courseplatform.quizzes.render import render_markdown

    out = render_markdown('![$" onerror="alert(1)$](https://example.org/x.png) and [a](https://example.org '
                          '"$\\" onmouseover=\\"alert(2)$")')
    assert_inert(out)


def test_quiz_answer_feedback_from_the_bank_is_sanitised(client_for, world, make_user):
    from courseplatform.quizzes import bank
    from courseplatform.quizzes import services as qsvc
    from courseplatform.quizzes.sync import apply_bank

    text = f'''
[quiz]
title = "Feedback quiz"
slug = "fbquiz"
review = "immediately"

[[question]]
id = "num"
type = "numeric"
text = "How many heads?"
answers = [{{ answer = 12, tolerance = 0, feedback = '**Right** {IMG}' }}]
explanation = "Twelve."
'''
    from django.utils import timezone

    quiz = apply_bank(world.course, bank.parse_bank(text, where="fb.toml"), source_path="quizzes/fb.toml")["quiz_obj"]
    quiz.published, quiz.opens_at, quiz.closes_at = True, timezone.now() - timedelta(hours=1), \
        timezone.now() + timedelta(hours=1)
    quiz.save()
    attempt = qsvc.start_attempt(quiz, world.carol)
    item = attempt.items.get()
    c = client_for(world.carol)
    c.post(reverse("quizzes:submit", args=["llms", attempt.pk]), {f"q{item.pk}": "12"})
    r = c.get(reverse("quizzes:result", args=["llms", attempt.pk]))
    assert r.status_code == 200
    assert b"<strong>Right</strong>" in r.content  # the feedback is shown, rendered
    assert_inert(r.content)


def test_autosave_error_echo_is_escaped(client_for, world):
    from courseplatform.quizzes.models import AttemptQuestion

    item = AttemptQuestion.objects.filter(attempt=world.alice_attempt, snapshot__type="numeric").first()
    r = client_for(world.alice).post(reverse("quizzes:answer", args=["llms", world.alice_attempt.pk, item.pk]),
                                     {f"q{item.pk}": '<img src=x onerror=alert(1)>'}, HTTP_HX_REQUEST="true")
    assert b"is not a number" in r.content
    assert_inert(r.content)


def test_submission_file_name_is_escaped_and_sanitised(client_for, world):
    from courseplatform.submissions.models import Submission

    Submission.objects.filter(pk=world.alice_sub.pk).update(original_name=f"{IMG}.py")
    c = client_for(world.alice)
    r = c.get(reverse("submissions:detail", args=["llms", world.assignment.slug]))
    assert r.status_code == 200
    assert_inert(r.content)
    r = client_for(world.instructor).get(reverse("submissions:staff", args=["llms", world.assignment.slug]))
    assert_inert(r.content)
    # and an uploaded name with markup never reaches the database as markup
    from courseplatform.submissions.validation import safe_name

    assert "<" not in safe_name(f"../../{IMG}.py") and "/" not in safe_name("../../etc/passwd.py")


def test_names_from_csv_enrolment_are_escaped(client_for, world):
    from django.contrib.auth import get_user_model

    get_user_model().objects.filter(pk=world.bob.pk).update(first_name=SCRIPT, last_name=IMG)
    for user, url in [
        (world.instructor, reverse("courses:roster", args=["llms"])),
        (world.instructor, reverse("courses:attendance", args=["llms"])),
        (world.instructor, reverse("gradebook:index", args=["llms"])),
        (world.instructor, reverse("projects:index", args=["llms"])),
        (world.instructor, reverse("submissions:staff", args=["llms", world.assignment.slug])),
        (world.instructor, reverse("quizzes:attempts", args=["llms", world.quiz.slug])),
        (world.carol, reverse("projects:index", args=["llms"])),  # a group mate's name
    ]:
        r = client_for(user).get(url)
        assert r.status_code == 200, url
        assert_inert(r.content)


def test_csv_enrolment_with_hostile_names_shows_them_as_text(client_for, world):
    from django.contrib.auth import get_user_model

    prof = client_for(world.instructor)
    url = reverse("courses:enrol", args=["llms"])
    data = ("username,name,email\n"
            f"mallory,\"{IMG} =HYPERLINK(\"\"http://evil\"\")\",mallory@example.edu\n")
    r = prof.post(url, {"file": SimpleUploadedFile("roster.csv", data.encode(), "text/csv"), "role": "student"})
    assert r.status_code == 200, r.content[:400]
    assert_inert(r.content)
    assert get_user_model().objects.filter(username="mallory").exists()
    r = prof.get(reverse("courses:enrol_links_csv", args=["llms"]))
    cells = [c for row in csv.reader(io.StringIO(r.content.decode("utf-8-sig"))) for c in row]
    assert any("HYPERLINK" in c for c in cells)
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@")]
    # a bad row is echoed in the error report: as text
    bad = f"username,name,email\n{SCRIPT},x,\"{IMG}\"\n"
    r = prof.post(url, {"file": SimpleUploadedFile("bad.csv", bad.encode(), "text/csv"), "role": "student"})
    assert r.status_code == 400
    assert b"line" in r.content.lower()
    assert_inert(r.content)


def test_gradebook_weights_refuse_nonsense(client_for, world):
    from courseplatform.gradebook.models import CategoryWeights

    prof = client_for(world.instructor)
    url = reverse("gradebook:weights", args=["llms"])
    for bad in ["NaN", "Infinity", "-1", "1e9", "<script>", ""]:
        r = prof.post(url, {"assignments": bad, "quizzes": "20", "milestones": "30", "attendance": "10"},
                      follow=True)
        assert r.status_code == 200
        assert "Weights not saved" in r.content.decode(), bad
        assert_inert(r.content)
    assert float(CategoryWeights.for_course(world.course).assignments) == 40.0


# --- CSV injection -----------------------------------------------------------------------------


FORMULAS = ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1:A9)", "\t=1", "\r=1"]


def test_gradebook_export_neutralises_formulas(client_for, world):
    from django.contrib.auth import get_user_model

    User = get_user_model()
    User.objects.filter(pk=world.bob.pk).update(first_name=FORMULAS[0], last_name=FORMULAS[3], email="+x@evil")
    User.objects.filter(pk=world.alice.pk).update(first_name=FORMULAS[1], last_name=FORMULAS[4])
    world.milestone.title = FORMULAS[2]
    world.milestone.save()
    r = client_for(world.ta).get(reverse("gradebook:export", args=["llms"]))
    assert r.status_code == 200
    assert r["Content-Type"].startswith("text/csv") and r["Content-Disposition"].startswith("attachment;")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    cells = [c for row in rows for c in row]
    bad = [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert not bad, bad
    assert "'" + FORMULAS[0] in cells and "'" + FORMULAS[2] + " [10]" in " ".join(cells) or any(
        c.startswith("'" + FORMULAS[2]) for c in cells)


def test_attendance_export_neutralises_formulas(client_for, world):
    from django.contrib.auth import get_user_model

    get_user_model().objects.filter(pk=world.bob.pk).update(first_name=FORMULAS[0])
    r = client_for(world.instructor).get(reverse("courses:attendance", args=["llms"]) + "?format=csv")
    assert r.status_code == 200
    cells = [c for row in csv.reader(io.StringIO(r.content.decode("utf-8-sig"))) for c in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "@", "\t", "\r")]


# --- downloads and uploads -----------------------------------------------------------------------


def _assert_download(r, *, forbid_html=True):
    assert r.status_code == 200
    assert r["Content-Disposition"].startswith("attachment"), r["Content-Disposition"]
    assert r["X-Content-Type-Options"] == "nosniff"
    if forbid_html:
        ctype = r["Content-Type"].lower()
        assert "html" not in ctype and "svg" not in ctype and "javascript" not in ctype, ctype


def test_every_file_download_is_an_attachment_with_nosniff(client_for, world):
    alice = client_for(world.alice)
    _assert_download(alice.get(reverse("submissions:file", args=["llms", world.alice_sub.pk])))
    _assert_download(alice.get(reverse("submissions:artifact", args=["llms", world.alice_sub.pk, 0])))
    _assert_download(alice.get(reverse("projects:download", args=["llms", world.alice_version.pk])))
    _assert_download(alice.get(reverse("projects:review_template", args=["llms"])))
    prof = client_for(world.instructor)
    _assert_download(prof.get(reverse("projects:download", args=["llms", world.bob_version.pk])))
    _assert_download(prof.get(reverse("gradebook:export", args=["llms"])))
    _assert_download(prof.get(reverse("submissions:export", args=["llms", world.assignment.slug])))


@pytest.mark.parametrize("name,data", [
    ("evil.html", b"<html><script>alert(1)</script></html>"),
    ("evil.svg", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'),
    ("evil.md.html", b"<script>alert(1)</script>"),
    ("evil.js", b"alert(1)"),
])
def test_html_and_svg_deliveries_are_refused(client_for, world, name, data):
    from courseplatform.projects.models import DeliveryVersion

    before = DeliveryVersion.objects.count()
    r = client_for(world.alice).post(
        reverse("projects:delivery", args=["llms", world.milestone.pk, world.group_a.pk]),
        {"repo_url": "https://example.org/a", "file": SimpleUploadedFile(name, data, content_type="text/html")})
    assert r.status_code == 400
    assert "does not accept" in r.content.decode()
    assert DeliveryVersion.objects.count() == before


def test_markdown_delivery_with_html_is_served_as_plain_text_attachment(client_for, world):
    body = b"# Review\n\n<script>alert(1)</script>\n" + b"x" * 10
    from courseplatform.projects.models import DeliveryVersion

    world.milestone.slug, world.milestone.title = "weekly-1", "Weekly 1"  # not a literature review
    world.milestone.save()
    r = client_for(world.alice).post(
        reverse("projects:delivery", args=["llms", world.milestone.pk, world.group_a.pk]),
        {"repo_url": "https://example.org/a", "file": SimpleUploadedFile("notes.md", body, "text/html")})
    assert r.status_code == 302, r.content[:500]
    v = DeliveryVersion.objects.filter(delivery__group=world.group_a).order_by("-number").first()
    r = client_for(world.instructor).get(reverse("projects:download", args=["llms", v.pk]))
    _assert_download(r)
    assert r["Content-Type"].startswith("text/plain") or r["Content-Type"] == "application/octet-stream"
    assert "sandbox" in r["Content-Security-Policy"]


def test_delivery_file_names_cannot_traverse(client_for, world):
    from courseplatform.projects.models import DeliveryVersion

    world.milestone.slug, world.milestone.title = "weekly-1", "Weekly 1"
    world.milestone.save()
    for name in ["../../../../tmp/pwned.md", "..\\..\\pwned.md", "/etc/passwd.md", "a/../../b.md"]:
        r = client_for(world.alice).post(
            reverse("projects:delivery", args=["llms", world.milestone.pk, world.group_a.pk]),
            {"repo_url": "https://example.org/a", "file": SimpleUploadedFile(name, b"# notes\n", "text/markdown")})
        assert r.status_code == 302, (name, r.content[:300])
        v = DeliveryVersion.objects.filter(delivery__group=world.group_a).order_by("-number").first()
        assert "/" not in v.filename and "\\" not in v.filename and not v.filename.startswith(".")
        stored = Path(v.file.path).resolve()
        assert stored.is_relative_to(Path(settings.MEDIA_ROOT).resolve()), stored
    assert not Path("/tmp/pwned.md").exists()


def test_submission_upload_name_cannot_traverse(client_for, world, no_tasks):
    from courseplatform.submissions.models import Submission

    r = client_for(world.carol).post(
        reverse("submissions:submit", args=["llms", world.assignment.slug]),
        {"file": SimpleUploadedFile("../../../etc/evil.py", b"def f():\n    return 1\n", "text/x-python")})
    assert r.status_code == 302
    sub = Submission.objects.filter(student=world.carol).get()
    assert sub.original_name == "evil.py"
    path = (Path(settings.MEDIA_ROOT) / sub.blob).resolve()
    assert path.is_relative_to(Path(settings.MEDIA_ROOT).resolve()) and path.is_file()
    r = client_for(world.carol).get(reverse("submissions:file", args=["llms", sub.pk]))
    assert 'filename="evil.py"' in r["Content-Disposition"]


def test_artifact_name_cannot_inject_headers_or_paths(client_for, world):
    from courseplatform.submissions.models import Submission

    result = dict(world.alice_sub.result)
    result["artifacts"] = [{"name": "../../x\";.html", "content_type": "text/html", "data_b64": "PHNjcmlwdD4="}]
    Submission.objects.filter(pk=world.alice_sub.pk).update(result=result)
    r = client_for(world.alice).get(reverse("submissions:artifact", args=["llms", world.alice_sub.pk, 0]))
    _assert_download(r)
    assert "/" not in r["Content-Disposition"].split("filename=")[1]


# --- open redirects ---------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example",
                                    "http:evil.example", "javascript:alert(1)"])
def test_login_next_never_leaves_the_site(client, world, target):
    r = client.post(reverse("login") + "?next=" + target, {"username": "alice", "password": "pw-alice",
                                                           "next": target})
    assert r.status_code == 302
    assert r["Location"] == reverse("courses:home"), r["Location"]


def test_regrade_next_never_leaves_the_site(client_for, world, no_tasks):
    for target in ["https://evil.example/", "//evil.example"]:
        r = client_for(world.ta).post(reverse("submissions:regrade", args=["llms", world.assignment.slug]),
                                      {"scope": "submission", "submission": world.bob_sub.pk, "next": target,
                                       "back": target})
        assert r.status_code == 302
        assert "evil.example" not in r["Location"]


# --- mass assignment -------------------------------------------------------------------------------


def test_student_cannot_smuggle_fields_into_a_delivery(client_for, world):
    from courseplatform.projects.models import DeliveryVersion

    world.milestone.slug, world.milestone.title = "weekly-1", "Weekly 1"
    world.milestone.save()
    r = client_for(world.alice).post(
        reverse("projects:delivery", args=["llms", world.milestone.pk, world.group_a.pk]),
        {"repo_url": "https://example.org/a", "file": SimpleUploadedFile("n.md", b"# n\n", "text/markdown"),
         "submitted_by": world.bob.pk, "is_late": "1", "number": "99", "group": world.group_b.pk,
         "score": "10", "delivery": world.bob_version.delivery_id})
    assert r.status_code == 302
    v = DeliveryVersion.objects.filter(delivery__group=world.group_a).order_by("-number").first()
    assert v.submitted_by == world.alice and v.number == 2 and not v.is_late
    assert DeliveryVersion.objects.filter(delivery__group=world.group_b).count() == 1


def test_student_cannot_join_as_staff_or_pick_a_group_code(client_for, world):
    from courseplatform.courses.models import Membership
    from courseplatform.projects.models import Group

    c = client_for(world.carol)
    c.post(reverse("projects:group_leave", args=["llms"]))
    r = c.post(reverse("projects:group_create", args=["llms"]),
               {"name": "Mine", "join_code": "AAAA-BBBB", "course": world.other_course.pk, "role": "instructor",
                "locked": "1"})
    assert r.status_code == 302
    g = Group.objects.get(name="Mine")
    assert g.course == world.course and g.join_code != "AAAA-BBBB"
    assert Membership.objects.get(course=world.course, user=world.carol).role == "student"


def test_join_code_of_another_course_is_refused(client_for, world):
    c = client_for(world.carol)
    c.post(reverse("projects:group_leave", args=["llms"]))
    r = c.post(reverse("projects:group_join", args=["llms"]), {"code": world.other_group.join_code}, follow=True)
    assert "Eve" not in r.content.decode()
    from courseplatform.projects.models import GroupMember

    assert not GroupMember.objects.filter(user=world.carol).exists()


def test_quiz_answer_cannot_set_score(client_for, world):
    from courseplatform.quizzes.models import AttemptQuestion

    item = world.alice_item
    r = client_for(world.alice).post(reverse("quizzes:answer", args=["llms", world.alice_attempt.pk, item.pk]),
                                     {f"q{item.pk}": "1", "score": "100", "max_score": "1"})
    assert r.status_code in (200, 400)
    assert AttemptQuestion.objects.get(pk=item.pk).score is None


def test_ta_cannot_promote_anyone(client_for, world):
    from courseplatform.courses.models import Membership

    r = client_for(world.ta).post(reverse("courses:member_role", args=["llms", world.bob_membership.pk]),
                                  {"role": "instructor"})
    assert r.status_code == 403
    assert Membership.objects.get(pk=world.bob_membership.pk).role == "student"


def test_grade_over_the_maximum_and_for_another_courses_group_is_refused(client_for, world):
    from courseplatform.projects.models import MilestoneGrade

    crit = world.milestone.criteria.get()
    c = client_for(world.instructor)
    r = c.post(reverse("projects:grade", args=["llms", world.milestone.pk, world.group_a.pk]),
               {f"criterion_{crit.pk}": "11", "feedback": "x"})
    assert r.status_code == 400 and not MilestoneGrade.objects.filter(group=world.group_a).exists()
    r = c.post(reverse("projects:grade", args=["llms", world.milestone.pk, world.other_group.pk]),
               {f"criterion_{crit.pk}": "5"})
    assert r.status_code == 404
    r = c.post(reverse("projects:grade", args=["llms", world.other_milestone.pk, world.group_a.pk]),
               {f"criterion_{crit.pk}": "5"})
    assert r.status_code == 404


# --- very large inputs ------------------------------------------------------------------------------


def test_very_large_text_fields_get_a_message_not_a_crash(client_for, world):
    from courseplatform.projects.models import DeliveryVersion, Group

    huge = "A" * 200_000
    c = client_for(world.carol)
    c.post(reverse("projects:group_leave", args=["llms"]))
    r = c.post(reverse("projects:group_create", args=["llms"]), {"name": huge}, follow=True)
    assert r.status_code == 200 and not Group.objects.filter(name__startswith="AAAA").exists()
    assert "80 characters" in r.content.decode()
    a = client_for(world.alice)
    url = reverse("projects:delivery", args=["llms", world.milestone.pk, world.group_a.pk])
    before = DeliveryVersion.objects.count()
    r = a.post(url, {"repo_url": "https://example.org/" + huge, "text": huge})
    assert r.status_code == 400 and DeliveryVersion.objects.count() == before
    r = a.post(reverse("projects:delivery_check", args=["llms", world.milestone.pk, world.group_a.pk]),
               {"text": "x" * 4_000_000})
    assert r.status_code in (200, 400, 413)
    item = world.alice_item
    r = a.post(reverse("quizzes:answer", args=["llms", world.alice_attempt.pk, item.pk]), {f"q{item.pk}": huge})
    assert r.status_code == 400
    r = client_for(world.instructor).post(
        reverse("projects:grade", args=["llms", world.milestone.pk, world.group_a.pk]),
        {f"criterion_{world.milestone.criteria.get().pk}": "1e999999"})
    assert r.status_code == 400


def test_request_body_over_the_limit_is_refused(client_for, world):
    r = client_for(world.alice).post(
        reverse("projects:delivery_check", args=["llms", world.milestone.pk, world.group_a.pk]),
        {"text": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 10)})
    assert r.status_code == 400  # Django's RequestDataTooBig, not a 500


# --- the gradebook shows a student their own row only ------------------------------------------------


def test_student_gradebook_shows_only_their_row(client_for, world):
    from django.contrib.auth import get_user_model

    get_user_model().objects.filter(pk=world.bob.pk).update(first_name="Robert", last_name="Secretname")
    r = client_for(world.alice).get(reverse("gradebook:index", args=["llms"]))
    assert r.status_code == 200
    text = r.content.decode()
    assert "Secretname" not in text and ">bob<" not in text and "carol" not in text
    r = client_for(world.alice).get(reverse("gradebook:index", args=["llms"]) + f"?user={world.bob.pk}")
    assert "Secretname" not in r.content.decode()
    r = client_for(world.ta).get(reverse("gradebook:index", args=["llms"]))
    assert "Secretname" in r.content.decode()


# --- the executed notebook a pack returns is the student's own HTML -------------------------------------


def _hostile_notebook() -> bytes:
    import json

    return json.dumps({
        "nbformat": 4, "nbformat_minor": 5, "metadata": {},
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "id": "m1",
             "source": f"# Notes\n\n{JS_LINK}\n\n{SCRIPT}\n\n<iframe src=\"https://evil.example\"></iframe>"},
            {"cell_type": "code", "metadata": {}, "id": "c1", "execution_count": 1, "source": "show()",
             "outputs": [
                 {"output_type": "display_data", "metadata": {},
                  "data": {"text/html": f"<b>bold</b>{SCRIPT}{IMG}<a href=\"javascript:alert(4)\">x</a>"
                                        "<form action=\"https://evil.example\"><input name=p></form>",
                           "text/plain": "fallback"}},
                 {"output_type": "display_data", "metadata": {},
                  "data": {"application/javascript": "alert('js output')", "text/plain": "js"}},
                 {"output_type": "display_data", "metadata": {},
                  "data": {"image/svg+xml": "<svg onload=\"alert(5)\"></svg>", "text/plain": "svg"}},
                 {"output_type": "stream", "name": "stdout", "text": SCRIPT},
             ]},
        ],
    }).encode()


def test_executed_notebook_feedback_runs_no_script(client_for, world):
    import base64

    from courseplatform.submissions.models import Submission

    result = dict(world.alice_sub.result)
    result["artifacts"] = [{"name": "executed.ipynb", "content_type": "application/x-ipynb+json",
                            "data_b64": base64.b64encode(_hostile_notebook()).decode()}]
    Submission.objects.filter(pk=world.alice_sub.pk).update(result=result)
    url = reverse("submissions:notebook_frame", args=["llms", world.alice_sub.pk, 0])
    r = client_for(world.alice).get(url)
    assert r.status_code == 200
    assert b"<b>bold</b>" in r.content  # rendered, not just refused
    assert_inert(r.content)
    assert b"<form" not in r.content and b"<iframe" not in r.content
    csp = r["Content-Security-Policy"]
    assert "sandbox" in csp and "script-src" not in csp and "default-src 'none'" in csp
    page = client_for(world.alice).get(reverse("submissions:notebook", args=["llms", world.alice_sub.pk, 0]))
    assert page.status_code == 200 and b"sandbox" in page.content  # the frame is sandboxed
    # Bob cannot open Alice's notebook.
    assert client_for(world.bob).get(url).status_code == 404


# --- what a student may see of their own work, and nothing more -----------------------------------------


def test_hidden_test_details_stay_hidden_from_the_student(client_for, world):
    """A hidden test shows its points, not its name, inputs or message, on every channel."""
    from courseplatform.submissions.models import ApiToken, Submission

    result = dict(world.alice_sub.result)
    result["tests"] = result["tests"] + [{"name": "hidden_case_with_input_-21", "score": 0, "max_score": 4,
                                          "status": "failed", "message": "double(-21) gave 7, expected -42",
                                          "visible": False}]
    Submission.objects.filter(pk=world.alice_sub.pk).update(result=result)
    alice = client_for(world.alice)
    pages = [alice.get(reverse("submissions:detail", args=["llms", world.assignment.slug])),
             alice.get(reverse("submissions:status", args=["llms", world.alice_sub.pk]))]
    _, key = ApiToken.issue(world.alice, "cli")
    from django.test import Client

    pages.append(Client(HTTP_AUTHORIZATION=f"Bearer {key}").get(f"/api/submissions/{world.alice_sub.pk}"))
    for r in pages:
        assert r.status_code == 200
        assert b"expected -42" not in r.content and b"hidden_case_with_input" not in r.content
    assert b"Hidden test 1" in pages[1].content  # the test is listed, redacted
    staff = client_for(world.ta).get(reverse("submissions:status", args=["llms", world.alice_sub.pk]))
    assert b"expected -42" in staff.content


def test_quiz_key_is_not_in_the_page_while_taking_or_before_review(client_for, world):
    from courseplatform.quizzes.models import Quiz

    Quiz.objects.filter(pk=world.quiz.pk).update(review="after_close")
    alice = client_for(world.alice)
    r = alice.get(reverse("quizzes:take", args=["llms", world.alice_attempt.pk]))
    assert r.status_code == 200
    assert b"768/12" not in r.content and b"[CLS]" not in r.content  # explanation, short-answer key
    alice.post(reverse("quizzes:submit", args=["llms", world.alice_attempt.pk]), {})
    r = alice.get(reverse("quizzes:result", args=["llms", world.alice_attempt.pk]))
    assert r.status_code == 200
    assert b"768/12" not in r.content and b"[CLS]" not in r.content


def test_student_pages_do_not_show_other_groups_join_codes(client_for, world):
    alice = client_for(world.alice)
    for url in [reverse("projects:index", args=["llms"]), reverse("courses:dashboard", args=["llms"]),
                reverse("projects:milestone", args=["llms", world.milestone.pk])]:
        r = alice.get(url, follow=True)
        assert r.status_code == 200
        assert world.group_b.join_code.encode() not in r.content
        assert b"Bob's private feedback" not in r.content
    assert world.group_a.join_code.encode() in alice.get(reverse("projects:index", args=["llms"])).content


def test_student_dashboard_shows_nobody_elses_results(client_for, world):
    from django.contrib.auth import get_user_model

    get_user_model().objects.filter(pk=world.bob.pk).update(last_name="Secretname")
    r = client_for(world.alice).get(reverse("courses:dashboard", args=["llms"]))
    assert r.status_code == 200
    assert b"Secretname" not in r.content and b"bob_solution" not in r.content


def test_gift_import_with_hostile_text_renders_inert_everywhere(client_for, world):
    from django.utils import timezone

    from courseplatform.quizzes import services as qsvc
    from courseplatform.quizzes.models import Quiz

    prof = client_for(world.instructor)
    url = reverse("quizzes:import_gift", args=["llms"])
    broken = f"::Q1:: {SCRIPT} {{=4 ~5\n\n::Q2:: {IMG} {{\n"
    r = prof.post(url, {"file": SimpleUploadedFile("bad.gift", broken.encode()), "title": "Bad", "slug": "bad"})
    assert r.status_code in (200, 400)
    assert_inert(r.content)
    assert not Quiz.objects.filter(slug="bad").exists()
    # GIFT escapes its special characters (= : # ~ { }) with a backslash.
    good = ("::Q1:: **Sum** <script>alert('xss')</script> what is 2+2? "
            "{=4 #right <img src\\=x onerror\\=alert(1)> ~5 #wrong [click me](javascript\\:alert(1))}\n\n"
            "::Q2:: [html]<p onclick\\=\"alert(7)\">BERT is bidirectional</p> {TRUE}\n")
    r = prof.post(url, {"file": SimpleUploadedFile("q.gift", good.encode()), "title": f"GIFT {SCRIPT}",
                        "slug": "giftsec"})
    assert r.status_code == 302, r.content[:500]
    quiz = Quiz.objects.get(course=world.course, slug="giftsec")
    quiz.published, quiz.review = True, "immediately"
    quiz.opens_at, quiz.closes_at = timezone.now() - timedelta(hours=1), timezone.now() + timedelta(hours=1)
    quiz.save()
    attempt = qsvc.start_attempt(quiz, world.carol)
    c = client_for(world.carol)
    pages = [c.get(reverse("quizzes:take", args=["llms", attempt.pk]))]
    items = {i.snapshot["type"]: i for i in attempt.items.all()}
    data = {}
    if "single" in items:
        s = items["single"].snapshot
        data[f"q{items['single'].pk}"] = [next(ch["id"] for ch in s["choices"] if ch["weight"] == 1.0)]
    c.post(reverse("quizzes:submit", args=["llms", attempt.pk]), data)
    pages.append(c.get(reverse("quizzes:result", args=["llms", attempt.pk])))
    pages.append(prof.get(reverse("quizzes:stats", args=["llms", "giftsec"])))
    pages.append(c.get(reverse("quizzes:index", args=["llms"])))
    for r in pages:
        assert r.status_code == 200
        assert_inert(r.content)
    assert b"<strong>Sum</strong>" in pages[0].content


def test_student_cannot_submit_to_an_unreleased_assignment(client_for, world, no_tasks):
    from courseplatform.submissions.models import Submission

    world.assignment.released = False
    world.assignment.save()
    before = Submission.objects.count()
    c = client_for(world.alice)
    r = c.post(reverse("submissions:submit", args=["llms", world.assignment.slug]),
               {"file": SimpleUploadedFile("a.py", b"def f():\n    return 1\n")})
    assert r.status_code == 404 and Submission.objects.count() == before
    assert c.get(reverse("submissions:detail", args=["llms", world.assignment.slug])).status_code == 404
    assert c.get(reverse("submissions:status", args=["llms", world.alice_sub.pk])).status_code == 404


def test_nul_bytes_in_project_text_get_a_message_or_are_dropped(client_for, world):
    """PostgreSQL refuses NUL in text: the projects pages answer with a message, never a 500."""
    from courseplatform.projects.models import Group, MilestoneGrade

    c = client_for(world.carol)
    c.post(reverse("projects:group_leave", args=["llms"]))
    r = c.post(reverse("projects:group_create", args=["llms"]), {"name": "Nulled\x00Team"}, follow=True)
    assert r.status_code == 200 and "Null characters are not allowed" in r.content.decode()
    assert not Group.objects.filter(name__startswith="Nulled").exists()
    prof = client_for(world.instructor)
    r = prof.post(reverse("projects:groups_action", args=["llms"]),
                  {"action": "rename", "group": "not-a-number", "name": "x"})
    assert r.status_code == 404
    crit = world.milestone.criteria.get()
    r = prof.post(reverse("projects:grade", args=["llms", world.milestone.pk, world.group_a.pk]),
                  {f"criterion_{crit.pk}": "6", f"comment_{crit.pk}": "ok\x00", "feedback": "Good\x00 work"})
    assert r.status_code == 302
    g = MilestoneGrade.objects.get(milestone=world.milestone, group=world.group_a)
    assert g.feedback == "Good work" and g.criterion_scores.get().comment == "ok"


def _cells(text: str) -> list[str]:
    return [c for row in csv.reader(io.StringIO(text)) for c in row]


def _assert_no_formula(cells, where):
    bad = [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert not bad, f"{where}: {bad}"


def test_every_csv_export_neutralises_formulas(client_for, world):
    """#12 item 5: one helper (core/csvexport.py) behind every export; a cell starting with =, +, -, @,
    tab or CR is neutralised in each of them (the gradebook and attendance exports, the set-password
    links, the roster template, and the index.csv inside an assignment's zip export)."""
    import zipfile

    from django.contrib.auth import get_user_model

    from courseplatform.core import csvexport

    for f in FORMULAS:
        assert csvexport.safe_cell(f) == "'" + f
    assert csvexport.safe_cell(-2.5) == "-2.5" and csvexport.safe_cell(None) == ""

    User = get_user_model()
    User.objects.filter(pk=world.bob.pk).update(first_name=FORMULAS[0], last_name=FORMULAS[5], email="-x@evil",
                                                 username="@bob")
    User.objects.filter(pk=world.alice.pk).update(first_name=FORMULAS[1], last_name=FORMULAS[4])
    world.milestone.title = FORMULAS[2]
    world.milestone.save()
    exports = {
        "gradebook": client_for(world.instructor).get(reverse("gradebook:export", args=["llms"])),
        "attendance": client_for(world.instructor).get(reverse("courses:attendance", args=["llms"]) + "?format=csv"),
        "roster template": client_for(world.instructor).get(reverse("courses:enrol_template", args=["llms"])),
    }
    c = client_for(world.instructor)
    session = c.session
    session["enrol-links-llms"] = [["=evil", FORMULAS[3], "+1@x", "https://example.org/set/abc"]]
    session.save()
    exports["set-password links"] = c.get(reverse("courses:enrol_links_csv", args=["llms"]))
    for where, r in exports.items():
        assert r.status_code == 200, where
        assert r["Content-Type"].startswith("text/csv"), where
        _assert_no_formula(_cells(r.content.decode("utf-8")), where)
    gradebook = _cells(exports["gradebook"].content.decode())
    assert "'" + FORMULAS[0] in gradebook and "'@bob" in gradebook
    assert "'=evil" in _cells(exports["set-password links"].content.decode())

    r = client_for(world.instructor).get(reverse("submissions:export", args=["llms", world.assignment.slug]))
    assert r.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(b"".join(r.streaming_content)))
    index = archive.read(f"{world.assignment.slug}/index.csv").decode()
    cells = _cells(index)
    _assert_no_formula(cells, "assignment export index.csv")
    assert "'@bob" in cells and any(c.startswith("'=cmd") for c in cells)
