from django.contrib import admin

from .models import Attempt, AttemptQuestion, Extension, Question, Quiz


class QuestionInline(admin.TabularInline):
    model = Question
    fields = ("position", "key", "kind", "points", "version", "active")
    readonly_fields = ("key", "kind", "version")
    extra = 0
    show_change_link = True


@admin.register(Quiz)
class QuizAdmin(admin.ModelAdmin):
    list_display = ("title", "course", "slug", "source", "published", "opens_at", "closes_at", "time_limit_minutes",
                    "max_attempts", "review")
    list_filter = ("course", "source", "published", "review")
    search_fields = ("title", "slug")
    inlines = [QuestionInline]


@admin.register(Question)
class QuestionAdmin(admin.ModelAdmin):
    list_display = ("key", "quiz", "kind", "points", "version", "active", "position")
    list_filter = ("quiz__course", "quiz", "kind", "active")
    search_fields = ("key",)
    readonly_fields = ("content_hash", "version")


class AttemptQuestionInline(admin.TabularInline):
    model = AttemptQuestion
    fields = ("position", "question", "version", "response", "score", "max_score", "grading_state")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Attempt)
class AttemptAdmin(admin.ModelAdmin):
    list_display = ("quiz", "student", "number", "state", "started_at", "deadline", "finished_at", "score",
                    "max_score")
    list_filter = ("quiz__course", "quiz", "state")
    search_fields = ("student__username", "student__last_name")
    inlines = [AttemptQuestionInline]


@admin.register(Extension)
class ExtensionAdmin(admin.ModelAdmin):
    list_display = ("quiz", "student", "extra_minutes", "closes_at", "reason", "granted_by")
    list_filter = ("quiz__course", "quiz")
