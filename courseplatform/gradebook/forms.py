from django import forms

from .models import CategoryWeights


class WeightsForm(forms.ModelForm):
    class Meta:
        model = CategoryWeights
        fields = ["assignments", "quizzes", "milestones", "attendance"]

    def clean(self):
        data = super().clean()
        if all(k in data for k in self.Meta.fields) and sum(data[k] for k in self.Meta.fields) <= 0:
            raise forms.ValidationError("At least one category needs a weight above 0.")
        return data
