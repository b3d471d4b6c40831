from __future__ import annotations

import datetime as dt

from django import forms

from .enrolment import MAX_CSV_BYTES
from .models import AttendanceStatus, Course, LectureSession, Role


class EnrolForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="UTF-8, header row username,name,email (comma, semicolon or tab separated).",
    )
    role = forms.ChoiceField(choices=[(Role.STUDENT, "Student"), (Role.TA, "Teaching assistant")], initial=Role.STUDENT)
    send_invites = forms.BooleanField(
        required=False,
        initial=False,
        label="E-mail each new person their set-password link",
    )

    def clean_file(self):
        f = self.cleaned_data["file"]
        if f.size > MAX_CSV_BYTES:
            raise forms.ValidationError(f"The file is larger than {MAX_CSV_BYTES // 1024 // 1024} MB.")
        return f


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class SessionForm(forms.ModelForm):
    class Meta:
        model = LectureSession
        fields = ["date", "title", "starts_at", "notes"]
        widgets = {
            "date": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            "starts_at": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "notes": forms.Textarea(attrs={"rows": 2}),
        }

    def __init__(self, *args, course: Course, **kwargs):
        super().__init__(*args, **kwargs)
        self.course = course

    def clean(self):
        data = super().clean()
        date, title = data.get("date"), data.get("title")
        if date and title:
            clash = LectureSession.objects.filter(course=self.course, date=date, title=title)
            if self.instance.pk:
                clash = clash.exclude(pk=self.instance.pk)
            if clash.exists():
                raise forms.ValidationError(f"There is already a session \u201c{title}\u201d on {date:%d.%m.%Y}.")
        return data

    def save(self, commit=True):
        self.instance.course = self.course
        return super().save(commit)


class WeeklySessionsForm(forms.Form):
    first = forms.DateField(label="First session", widget=forms.DateInput(attrs={"type": "date"}))
    last = forms.DateField(label="Last session on or before", widget=forms.DateInput(attrs={"type": "date"}))
    title = forms.CharField(
        max_length=180, initial="Lecture", help_text="Each session is named \u201c<title> <n>\u201d."
    )
    starts_at = forms.TimeField(required=False, widget=forms.TimeInput(attrs={"type": "time"}))
    skip = forms.CharField(
        required=False,
        label="Skip these dates",
        help_text="Holidays, comma separated, e.g. 2026-12-25, 2027-01-01",
    )

    MAX_SESSIONS = 60

    def clean_skip(self):
        raw = self.cleaned_data["skip"]
        dates = set()
        for part in raw.replace(";", ",").split(","):
            part = part.strip()
            if not part:
                continue
            for fmt in ("%Y-%m-%d", "%d.%m.%Y"):
                try:
                    dates.add(dt.datetime.strptime(part, fmt).date())
                    break
                except ValueError:
                    continue
            else:
                raise forms.ValidationError(f"{part!r} is not a date (use YYYY-MM-DD or DD.MM.YYYY).")
        return dates

    def clean(self):
        data = super().clean()
        first, last = data.get("first"), data.get("last")
        if first and last:
            if last < first:
                raise forms.ValidationError("The last date is before the first.")
            if (last - first).days // 7 + 1 > self.MAX_SESSIONS:
                raise forms.ValidationError(f"That is more than {self.MAX_SESSIONS} weekly sessions.")
        return data

    def dates(self) -> list[dt.date]:
        first, last, skip = self.cleaned_data["first"], self.cleaned_data["last"], self.cleaned_data["skip"]
        out, day = [], first
        while day <= last:
            if day not in skip:
                out.append(day)
            day += dt.timedelta(days=7)
        return out


class CourseSettingsForm(forms.ModelForm):
    class Meta:
        model = Course
        fields = ["title", "term", "description", "max_absences", "time_zone"]
        widgets = {"description": forms.Textarea(attrs={"rows": 4})}
        labels = {"max_absences": "Absences allowed"}


class SessionAttendanceForm(forms.Form):
    """One session's attendance on one page: a ``status-<user id>`` choice per student. A student may
    be left unmarked, unless already marked (a mark is changed, never removed)."""

    MESSAGE = "choose present, absent or excused."

    def __init__(self, students, current: dict[int, str], *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.students = list(students)
        for user in self.students:
            self.fields[self.field_name(user)] = forms.ChoiceField(
                choices=AttendanceStatus.choices, required=user.id in current,
                error_messages={"required": self.MESSAGE, "invalid_choice": self.MESSAGE})

    @staticmethod
    def field_name(user) -> str:
        return f"status-{user.id}"

    def marks(self) -> dict[int, str]:
        """{user id: status} of the students given a valid status (after is_valid())."""
        data = getattr(self, "cleaned_data", {})
        return {u.id: data[self.field_name(u)] for u in self.students if data.get(self.field_name(u))}

    def error_lines(self) -> list[str]:
        return [f"{u.username}: {self.MESSAGE}" for u in self.students if self.field_name(u) in self.errors]
