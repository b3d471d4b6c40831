from __future__ import annotations

from django import forms

from courseplatform.courses.models import LectureSession
from courseplatform.quizzes.models import Question, Quiz

from .models import GradebookMode, LiveSettings
from .services import KINDS


class StartForm(forms.Form):
    lecture = forms.ModelChoiceField(queryset=LectureSession.objects.none(), label="Lecture session")
    quiz = forms.ModelChoiceField(queryset=Quiz.objects.none(), required=False, label="Quiz",
                                  help_text="All its questions, unless you pick some below.")
    questions = forms.ModelMultipleChoiceField(queryset=Question.objects.none(), required=False,
                                               widget=forms.CheckboxSelectMultiple,
                                               label="Or pick questions from the course's banks")
    title = forms.CharField(max_length=200, required=False)
    mark_attendance = forms.BooleanField(required=False, initial=True, label="Joining marks the student present")

    def __init__(self, course, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["lecture"].queryset = LectureSession.objects.filter(course=course).order_by("-date", "-starts_at")
        self.fields["quiz"].queryset = Quiz.objects.filter(course=course).order_by("title")
        self.fields["questions"].queryset = (Question.objects.filter(quiz__course=course, active=True, kind__in=KINDS)
                                             .select_related("quiz").order_by("quiz__title", "position"))
        self.fields["questions"].label_from_instance = lambda q: f"{q.quiz.title}: {q.key} ({q.get_kind_display()})"

    def clean(self):
        data = super().clean()
        if not data.get("quiz") and not data.get("questions"):
            raise forms.ValidationError("Choose a quiz or pick questions.")
        return data

    def chosen_questions(self) -> list:
        picked = list(self.cleaned_data.get("questions") or [])
        if picked:
            return picked
        return list(self.cleaned_data["quiz"].active_questions().filter(kind__in=KINDS))


class SettingsForm(forms.ModelForm):
    class Meta:
        model = LiveSettings
        fields = ["gradebook"]
        labels = {"gradebook": "Ended live quizzes count in the gradebook (category quizzes)"}
        widgets = {"gradebook": forms.RadioSelect(choices=GradebookMode.choices)}
