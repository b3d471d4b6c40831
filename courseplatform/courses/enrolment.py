"""Enrolling people from a CSV file (username, name, email), all or nothing.

New accounts get an unusable password and a one-time "set your password" link (Django's
password-reset token, valid for settings.PASSWORD_RESET_TIMEOUT); the instructor sees the links
once, can download them as CSV, and can have them e-mailed. Nobody ever handles a plaintext password.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.db.models.functions import Lower
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from .models import Course, Membership, Role

REQUIRED_COLUMNS = ("username", "name", "email")
MAX_CSV_BYTES = 2 * 1024 * 1024
MAX_ROWS = 5000


@dataclass
class RowError:
    line: int
    message: str


@dataclass
class Row:
    line: int
    username: str
    name: str
    email: str

    @property
    def first_last(self) -> tuple[str, str]:
        parts = self.name.split(maxsplit=1)
        if not parts:
            return "", ""
        return parts[0], (parts[1] if len(parts) > 1 else "")


@dataclass
class Parsed:
    rows: list[Row] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)


@dataclass
class Enrolled:
    user: object
    status: str  # "created" | "enrolled" (existing account) | "already" (already a member: unchanged)
    role: str
    invite_url: str = ""
    note: str = ""


def decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"The file is not UTF-8 text (undecodable byte at position {exc.start}). "
            "Save it as \"CSV UTF-8\" in your spreadsheet program and upload it again."
        ) from None


def parse(data: bytes) -> Parsed:
    """Check every row; collect every problem with its line number (line 1 is the header)."""
    result = Parsed()
    if len(data) > MAX_CSV_BYTES:
        result.errors.append(RowError(0, f"The file is larger than {MAX_CSV_BYTES // 1024 // 1024} MB."))
        return result
    try:
        text = decode(data)
    except ValueError as exc:
        result.errors.append(RowError(0, str(exc)))
        return result
    if "\x00" in text:
        result.errors.append(RowError(0, "The file contains NUL bytes: it is not a CSV text file."))
        return result
    if not text.strip():
        result.errors.append(RowError(0, "The file is empty. Expected a header row: username,name,email"))
        return result
    first_line = text.splitlines()[0]
    delimiter = max([",", ";", "\t"], key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except csv.Error as exc:
        result.errors.append(RowError(1, f"Unreadable header: {exc}"))
        return result
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        result.errors.append(
            RowError(
                1,
                f"Missing column(s): {', '.join(missing)}. The header row must name the columns "
                f"username, name, email (found: {', '.join(h or '(empty)' for h in header)}).",
            )
        )
        return result
    dupe_cols = sorted({h for h in header if header.count(h) > 1 and h in REQUIRED_COLUMNS})
    if dupe_cols:
        result.errors.append(RowError(1, f"Column(s) named twice: {', '.join(dupe_cols)}."))
        return result
    result.ignored_columns = [h for h in header if h not in REQUIRED_COLUMNS and h]
    idx = {c: header.index(c) for c in REQUIRED_COLUMNS}
    seen: dict[str, int] = {}
    seen_email: dict[str, int] = {}
    username_validator = UnicodeUsernameValidator()
    try:
        for record in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in record):
                continue  # blank lines are harmless
            if len(result.rows) + len(result.errors) >= MAX_ROWS:
                result.errors.append(RowError(line, f"More than {MAX_ROWS} rows: split the file."))
                break
            if len(record) < len(header):
                result.errors.append(
                    RowError(line, f"Expected {len(header)} fields, found {len(record)}.")
                )
                continue
            username = record[idx["username"]].strip()
            name = " ".join(record[idx["name"]].split())
            email = record[idx["email"]].strip()
            problems = []
            if not username:
                problems.append("username is empty")
            else:
                if len(username) > 150:
                    problems.append("username is longer than 150 characters")
                try:
                    username_validator(username)
                except ValidationError:
                    problems.append(
                        f"username {username!r} may contain only letters, digits and @/./+/-/_"
                    )
            if not name:
                problems.append("name is empty")
            elif len(name) > 300:
                problems.append("name is longer than 300 characters")
            if not email:
                problems.append("email is empty")
            else:
                try:
                    validate_email(email)
                except ValidationError:
                    problems.append(f"email {email!r} is not a valid address")
            key = username.lower()
            if username and key in seen:
                problems.append(f"username {username!r} already appears on line {seen[key]}")
            if email and email.lower() in seen_email:
                problems.append(f"email {email!r} already appears on line {seen_email[email.lower()]}")
            if problems:
                result.errors.append(RowError(line, "; ".join(problems) + "."))
            if username:
                seen.setdefault(key, line)
            if email:
                seen_email.setdefault(email.lower(), line)
            if not problems:
                result.rows.append(Row(line, username, name, email))
    except csv.Error as exc:
        result.errors.append(RowError(reader.line_num, f"Unreadable CSV: {exc}"))
    if not result.rows and not result.errors:
        result.errors.append(RowError(0, "The file has a header but no rows."))
    return result


def check_against_accounts(parsed: Parsed) -> None:
    """Rows whose username exists with a different e-mail are refused: probably a typo or a clash."""
    User = get_user_model()
    wanted = {r.username.lower() for r in parsed.rows}
    existing = {
        u.username.lower(): u
        for u in User.objects.annotate(lower_name=Lower("username")).filter(lower_name__in=wanted)
    }
    ok = []
    for row in parsed.rows:
        user = existing.get(row.username.lower())
        if user is not None and user.email and user.email.lower() != row.email.lower():
            parsed.errors.append(
                RowError(
                    row.line,
                    f"username {row.username!r} belongs to an existing account with a different e-mail "
                    f"({user.email}). Fix the row, or enrol that account with its own e-mail.",
                )
            )
        elif user is not None and user.username != row.username:
            parsed.errors.append(
                RowError(row.line, f"username {row.username!r} clashes with existing account {user.username!r}.")
            )
        else:
            ok.append(row)
    parsed.rows = ok
    parsed.errors.sort(key=lambda e: e.line)


def invite_url(request, user) -> str:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    path = reverse("password_reset_confirm", kwargs={"uidb64": uid, "token": token})
    return request.build_absolute_uri(path) if request is not None else path


def enrol(course: Course, rows: list[Row], role: str = Role.STUDENT, request=None) -> list[Enrolled]:
    """Create or reuse the accounts and add the memberships, in one transaction."""
    User = get_user_model()
    out: list[Enrolled] = []
    with transaction.atomic():
        for row in rows:
            user = User.objects.filter(username__iexact=row.username).first()
            first, last = row.first_last
            if user is None:
                user = User(username=row.username, email=row.email, first_name=first[:150], last_name=last[:150])
                user.set_unusable_password()
                user.save()
                status = "created"
            else:
                status = "enrolled"
            membership, created = Membership.objects.get_or_create(course=course, user=user, defaults={"role": role})
            note = ""
            if not created:
                status = "already"
                note = f"already enrolled as {membership.get_role_display()}; unchanged"
            entry = Enrolled(user=user, status=status, role=membership.role, note=note)
            if status == "created" or (not user.has_usable_password() and status != "already"):
                entry.invite_url = invite_url(request, user)
            out.append(entry)
    return out


def send_invites(course: Course, entries: list[Enrolled]) -> int:
    sent = 0
    for entry in entries:
        if not entry.invite_url or not entry.user.email:
            continue
        body = render_to_string(
            "courses/email/invite.txt", {"course": course, "user": entry.user, "url": entry.invite_url}
        )
        send_mail(f"Your account for {course.title}", body, None, [entry.user.email])
        sent += 1
    return sent
