from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.forms import inlineformset_factory

from courseplatform.courses.models import students_of

from .models import Group, Milestone, ProjectSettings, RubricCriterion


class GroupNameForm(forms.Form):
    name = forms.CharField(max_length=80, label="Group name")


class JoinForm(forms.Form):
    code = forms.CharField(max_length=32, label="Join code")


class DeliveryForm(forms.Form):
    repo_url = forms.CharField(max_length=500, required=False, label="Repository URL",
                               widget=forms.URLInput(attrs={"placeholder": "https://github.com/team/project"}))
    file = forms.FileField(required=False, label="File")
    text = forms.CharField(required=False, label="…or paste the Markdown of your review",
                           widget=forms.Textarea(attrs={"rows": 14, "spellcheck": "true"}))


class SettingsForm(forms.ModelForm):
    class Meta:
        model = ProjectSettings
        fields = ["max_group_size", "students_form_groups", "lock_at"]
        widgets = {"lock_at": forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")}


class MoveForm(forms.Form):
    student = forms.ModelChoiceField(queryset=get_user_model().objects.none())
    group = forms.ModelChoiceField(queryset=Group.objects.none(), required=False, empty_label="— no group —")

    def __init__(self, course, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["student"].queryset = (
            students_of(course).order_by("last_name", "first_name", "username")
        )
        self.fields["student"].label_from_instance = lambda u: f"{u.get_full_name() or u.username} ({u.username})"
        self.fields["group"].queryset = Group.objects.filter(course=course)


class MilestoneForm(forms.ModelForm):
    class Meta:
        model = Milestone
        fields = ["title", "slug", "due", "deliverable", "file_types", "allow_late", "points", "min_sources",
                  "instructions"]
        widgets = {
            "due": forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
            "instructions": forms.Textarea(attrs={"rows": 12}),
        }

    def __init__(self, course, *args, **kwargs):
        self.course = course
        super().__init__(*args, **kwargs)

    def clean_slug(self):
        slug = self.cleaned_data["slug"]
        qs = Milestone.objects.filter(course=self.course, slug=slug)
        if self.instance.pk:
            qs = qs.exclude(pk=self.instance.pk)
        if qs.exists():
            raise forms.ValidationError("Another milestone of this course uses this slug.")
        return slug

    def clean_file_types(self):
        allowed = {"pdf", "md", "markdown", "txt", "zip", "ipynb"}
        exts = [e.strip().lower().lstrip(".") for e in self.cleaned_data["file_types"].split(",") if e.strip()]
        bad = [e for e in exts if e not in allowed]
        if bad:
            raise forms.ValidationError(f"Unsupported type(s): {', '.join(bad)}. Use: {', '.join(sorted(allowed))}.")
        return ",".join(exts)


RubricFormSet = inlineformset_factory(
    Milestone, RubricCriterion, fields=["title", "points", "description", "order"], extra=2, can_delete=True,
    widgets={"description": forms.Textarea(attrs={"rows": 2})},
)
