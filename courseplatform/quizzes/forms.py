from __future__ import annotations

import tomllib

from django import forms
from django.contrib.auth import get_user_model

from courseplatform.courses.models import students_of

from . import bank
from .models import Extension, Quiz


class QuizSettingsForm(forms.ModelForm):
    class Meta:
        model = Quiz
        fields = ["title", "description", "published", "opens_at", "closes_at", "time_limit_minutes",
                  "max_attempts", "review", "grading", "shuffle_questions", "shuffle_choices"]
        widgets = {
            "opens_at": forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
            "closes_at": forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
            "description": forms.Textarea(attrs={"rows": 4}),
        }

    def clean(self):
        data = super().clean()
        if data.get("opens_at") and data.get("closes_at") and data["closes_at"] <= data["opens_at"]:
            self.add_error("closes_at", "The quiz must close after it opens.")
        return data


class QuestionEditForm(forms.Form):
    """The question as its bank entry (TOML), so every field of every type can be fixed."""

    source = forms.CharField(widget=forms.Textarea(attrs={"rows": 24, "class": "mono", "spellcheck": "false"}))
    regrade = forms.BooleanField(required=False, initial=True,
                                 label="Regrade all finished attempts with the new version")

    def __init__(self, *args, key: str = "", **kwargs):
        self.key = key
        super().__init__(*args, **kwargs)

    def clean_source(self):
        text = self.cleaned_data["source"]
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise forms.ValidationError(f"TOML syntax error: {exc}") from None
        data = data.get("question", data)
        if isinstance(data, list):
            if len(data) != 1:
                raise forms.ValidationError("Edit exactly one question.")
            data = data[0]
        try:
            spec = bank.validate_question(data, where="question")
        except bank.BankError as exc:
            raise forms.ValidationError(str(exc)) from None
        if spec["id"] != self.key:
            raise forms.ValidationError(f"The id must stay {self.key!r} (attempts refer to it).")
        self.spec = spec
        return text


class ExtensionForm(forms.ModelForm):
    student = forms.ModelChoiceField(queryset=get_user_model().objects.none())

    class Meta:
        model = Extension
        fields = ["student", "extra_minutes", "closes_at", "reason"]
        widgets = {"closes_at": forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")}

    def __init__(self, *args, quiz: Quiz, **kwargs):
        super().__init__(*args, **kwargs)
        self.quiz = quiz
        self.fields["student"].queryset = students_of(quiz.course).order_by("last_name", "username")
        self.fields["student"].label_from_instance = lambda u: f"{u.get_full_name() or u.username} ({u.username})"

    def clean(self):
        data = super().clean()
        if not data.get("extra_minutes") and not data.get("closes_at"):
            raise forms.ValidationError("Give extra minutes, a later close time, or both.")
        if data.get("closes_at") and self.quiz.closes_at and data["closes_at"] <= self.quiz.closes_at:
            self.add_error("closes_at", "This is not later than the quiz's own close time.")
        return data


class GiftImportForm(forms.Form):
    file = forms.FileField(help_text="A Moodle GIFT text file (UTF-8).")
    title = forms.CharField(max_length=200)
    slug = forms.SlugField(max_length=64, help_text="Short name in URLs; an existing GIFT quiz with this slug is updated.")

    def clean_file(self):
        f = self.cleaned_data["file"]
        if f.size > 2 * 1024 * 1024:
            raise forms.ValidationError("The file is larger than 2 MB.")
        try:
            return f.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise forms.ValidationError("The file is not UTF-8 text.") from None
