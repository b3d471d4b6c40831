from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model

from courseplatform.courses.models import students_of

from .models import Assignment, Extension


class UploadForm(forms.Form):
    file = forms.FileField(label="Your solution", allow_empty_file=True)


class PackUploadForm(forms.Form):
    file = forms.FileField(label="Pack (.zip)", allow_empty_file=True,
                           help_text="The pack's folder zipped: assignment.toml, handout.md, starter, reference.py, tests.py, mutants/.")
    regrade = forms.BooleanField(label="Regrade every submission once the new version is installed", required=False)


class DateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, **kwargs):
        kwargs.setdefault("format", "%Y-%m-%dT%H:%M")
        super().__init__(**kwargs)


class AssignmentSettingsForm(forms.ModelForm):
    class Meta:
        model = Assignment
        fields = [
            "released", "opens_at", "due_at", "late_policy", "grace_minutes", "late_penalty_percent",
            "late_cutoff_days", "max_attempts", "cooldown_seconds", "max_queued_per_student", "score_rule",
            "release_hidden_details", "leaderboard_metric", "leaderboard_order", "leaderboard_names",
        ]
        widgets = {"opens_at": DateTimeInput(), "due_at": DateTimeInput()}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("leaderboard_order", "leaderboard_names"):
            self.fields[name].required = False

    def clean_leaderboard_order(self):
        return self.cleaned_data.get("leaderboard_order") or self.instance.leaderboard_order or "desc"

    def clean_leaderboard_names(self):
        return self.cleaned_data.get("leaderboard_names") or self.instance.leaderboard_names or "pseudonym"

    def clean_leaderboard_metric(self):
        value = (self.cleaned_data.get("leaderboard_metric") or "").strip()
        if value and not all(ch.isalnum() or ch in "_-." for ch in value):
            raise forms.ValidationError("A metric name as the pack reports it, e.g. f1 or accuracy.")
        return value

    def clean_late_penalty_percent(self):
        value = self.cleaned_data["late_penalty_percent"]
        if not 0 <= value <= 100:
            raise forms.ValidationError("A percentage between 0 and 100.")
        return value

    def clean_max_queued_per_student(self):
        value = self.cleaned_data["max_queued_per_student"]
        if value < 1:
            raise forms.ValidationError("At least 1, or students could never submit.")
        return value

    def clean(self):
        data = super().clean()
        if data.get("opens_at") and data.get("due_at") and data["opens_at"] >= data["due_at"]:
            self.add_error("due_at", "The deadline must come after the opening time.")
        return data


class ExtensionForm(forms.Form):
    student = forms.ModelChoiceField(queryset=get_user_model().objects.none())
    due_at = forms.DateTimeField(label="New deadline", widget=DateTimeInput())
    reason = forms.CharField(max_length=200, required=False)

    def __init__(self, *args, course=None, assignment=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.assignment = assignment
        self.fields["student"].queryset = (
            students_of(course).order_by("last_name", "first_name", "username")
        )
        self.fields["student"].label_from_instance = lambda u: f"{u.get_full_name() or u.username} ({u.username})"

    def clean_due_at(self):
        value = self.cleaned_data["due_at"]
        if self.assignment and self.assignment.due_at and value <= self.assignment.due_at:
            raise forms.ValidationError("An extension must end after the assignment's deadline.")
        return value

    def save(self, granted_by) -> Extension:
        ext, _ = Extension.objects.update_or_create(
            assignment=self.assignment,
            student=self.cleaned_data["student"],
            defaults={"due_at": self.cleaned_data["due_at"], "reason": self.cleaned_data["reason"], "granted_by": granted_by},
        )
        return ext


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, initial="CLI", help_text="A label, e.g. the laptop you use it on.")


