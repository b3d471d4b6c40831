from django.contrib import admin

from . import services
from .models import ApiToken, Assignment, Extension, PackUpload, Submission


class ExtensionInline(admin.TabularInline):
    model = Extension
    extra = 0
    raw_id_fields = ("student", "granted_by")


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ("slug", "title", "course", "points", "queue", "due_at", "late_policy", "released", "pack_hash_short")
    list_filter = ("course", "queue", "released", "late_policy")
    search_fields = ("slug", "title")
    readonly_fields = ("pack_source", "pack_hash", "pack_path", "pack_synced_at", "pack_settings", "created_at", "updated_at")
    inlines = [ExtensionInline]

    @admin.display(description="pack")
    def pack_hash_short(self, obj):
        return obj.pack_hash[:12]


@admin.action(description="Regrade the selected submissions")
def regrade_selected(modeladmin, request, queryset):
    n = services.regrade(queryset)
    modeladmin.message_user(request, f"{n} submission(s) queued for regrading.")


@admin.register(Submission)
class SubmissionAdmin(admin.ModelAdmin):
    list_display = ("id", "assignment", "student", "attempt", "state", "score", "max_score", "late_days", "is_test_run", "created_at", "worker")
    list_filter = ("state", "is_test_run", "assignment__course", "assignment")
    search_fields = ("student__username", "original_name", "sha256")
    raw_id_fields = ("student",)
    readonly_fields = ("sha256", "blob", "size", "kind", "created_at", "queued_at", "started_at", "finished_at", "task_id", "deliveries", "retries", "generation", "pack_hash")
    actions = [regrade_selected]


@admin.register(Extension)
class ExtensionAdmin(admin.ModelAdmin):
    list_display = ("assignment", "student", "due_at", "reason", "granted_by")
    raw_id_fields = ("student", "granted_by")


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("user", "name", "prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("prefix", "key_hash", "created_at", "last_used_at")
    search_fields = ("user__username", "prefix")


@admin.register(PackUpload)
class PackUploadAdmin(admin.ModelAdmin):
    list_display = ("slug", "course", "original_name", "status", "uploaded_by", "created_at", "finished_at")
    list_filter = ("status", "course")
    search_fields = ("slug", "original_name")
    readonly_fields = ("course", "uploaded_by", "original_name", "sha256", "size", "slug", "title", "queue", "staging_path",
                       "pack_hash", "regrade_after", "status", "items", "total_items", "message", "assignment",
                       "created_at", "finished_at")
