from django.contrib import admin

from .models import LiveQuestion, LiveSession, LiveSettings, Participant, Response


class LiveQuestionInline(admin.TabularInline):
    model = LiveQuestion
    fields = ("position", "key", "kind", "personal", "opened_at", "closed_at")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(LiveSession)
class LiveSessionAdmin(admin.ModelAdmin):
    list_display = ("title", "course", "lecture", "phase", "created_at")
    list_filter = ("course", "phase")
    inlines = [LiveQuestionInline]


@admin.register(LiveSettings)
class LiveSettingsAdmin(admin.ModelAdmin):
    list_display = ("course", "gradebook")


@admin.register(Participant)
class ParticipantAdmin(admin.ModelAdmin):
    list_display = ("live", "user", "joined_at")


@admin.register(Response)
class ResponseAdmin(admin.ModelAdmin):
    list_display = ("question", "user", "score", "answered_at")
