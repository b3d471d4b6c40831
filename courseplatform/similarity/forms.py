from __future__ import annotations

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator

from .models import PairReview, SimilaritySettings


class SettingsForm(forms.ModelForm):
    threshold = forms.FloatField(validators=[MinValueValidator(0.05), MaxValueValidator(1.0)],
                                 help_text="Pairs at or above this score are flagged (0.05–1).")
    boilerplate_share = forms.FloatField(validators=[MinValueValidator(0.02), MaxValueValidator(1.0)],
                                         help_text="Code in at least this share of the class is common (0.02–1).")

    class Meta:
        model = SimilaritySettings
        fields = ["run_after_deadline", "threshold", "boilerplate_share"]


class ReviewForm(forms.Form):
    status = forms.ChoiceField(choices=[*PairReview.Status.choices, ("clear", "Not reviewed")])
    note = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3}))

    def clean_note(self):
        note = self.cleaned_data["note"]
        if "\x00" in note:
            raise forms.ValidationError("The note contains a NUL character.")
        return note


class PublicSourceForm(forms.Form):
    file = forms.FileField(label="Public implementation (.py, .ipynb or a .zip of them)", allow_empty_file=False)
