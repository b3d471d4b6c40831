from django.contrib import admin

from .models import (
    CriterionScore,
    Delivery,
    DeliveryVersion,
    Group,
    GroupEvent,
    GroupMember,
    MemberOverride,
    Milestone,
    MilestoneGrade,
    ProjectSettings,
    ReminderSent,
    RubricCriterion,
)


@admin.register(ProjectSettings)
class ProjectSettingsAdmin(admin.ModelAdmin):
    list_display = ("course", "max_group_size", "students_form_groups", "locked", "lock_at")


class GroupMemberInline(admin.TabularInline):
    model = GroupMember
    extra = 0
    fields = ("user", "course", "joined_at")
    readonly_fields = ("joined_at",)


@admin.register(Group)
class GroupAdmin(admin.ModelAdmin):
    list_display = ("name", "course", "join_code", "created_at")
    list_filter = ("course",)
    search_fields = ("name", "join_code", "members__user__username")
    readonly_fields = ("join_code", "created_at")
    inlines = [GroupMemberInline]


@admin.register(GroupEvent)
class GroupEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "course", "actor", "action", "group_name", "subject", "detail")
    list_filter = ("course", "action")
    readonly_fields = [f.name for f in GroupEvent._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class RubricInline(admin.TabularInline):
    model = RubricCriterion
    extra = 1


@admin.register(Milestone)
class MilestoneAdmin(admin.ModelAdmin):
    list_display = ("title", "course", "due", "deliverable", "allow_late", "min_sources")
    list_filter = ("course", "deliverable")
    search_fields = ("title", "slug")
    inlines = [RubricInline]


class VersionInline(admin.TabularInline):
    model = DeliveryVersion
    extra = 0
    readonly_fields = ("number", "repo_url", "file", "filename", "size", "sha256", "submitted_by", "submitted_at",
                       "is_late")
    exclude = ("check_report",)


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ("milestone", "group", "created_at", "updated_at")
    list_filter = ("milestone__course", "milestone")
    inlines = [VersionInline]


class CriterionScoreInline(admin.TabularInline):
    model = CriterionScore
    extra = 0


class OverrideInline(admin.TabularInline):
    model = MemberOverride
    extra = 0


@admin.register(MilestoneGrade)
class MilestoneGradeAdmin(admin.ModelAdmin):
    list_display = ("milestone", "group", "score", "graded_by", "graded_at")
    list_filter = ("milestone__course", "milestone")
    inlines = [CriterionScoreInline, OverrideInline]


@admin.register(ReminderSent)
class ReminderSentAdmin(admin.ModelAdmin):
    list_display = ("milestone", "group", "sent_at", "recipients")
    list_filter = ("milestone__course",)
