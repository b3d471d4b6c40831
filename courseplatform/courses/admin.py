from django.contrib import admin

from .models import Attendance, Course, LectureSession, Membership


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Course)
class CourseAdmin(admin.ModelAdmin):
    list_display = ["title", "slug", "term", "max_absences", "created_at"]
    search_fields = ["title", "slug", "term"]
    prepopulated_fields = {"slug": ["title"]}
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "course", "role", "created_at"]
    list_filter = ["course", "role"]
    search_fields = ["user__username", "user__first_name", "user__last_name", "user__email"]
    autocomplete_fields = ["user"]


class AttendanceInline(admin.TabularInline):
    model = Attendance
    extra = 0
    autocomplete_fields = ["user"]
    readonly_fields = ["marked_by", "marked_at"]


@admin.register(LectureSession)
class LectureSessionAdmin(admin.ModelAdmin):
    list_display = ["date", "title", "course", "starts_at"]
    list_filter = ["course"]
    date_hierarchy = "date"
    search_fields = ["title"]
    inlines = [AttendanceInline]


@admin.register(Attendance)
class AttendanceAdmin(admin.ModelAdmin):
    list_display = ["session", "user", "status", "marked_by", "marked_at"]
    list_filter = ["session__course", "status"]
    search_fields = ["user__username", "session__title"]
    autocomplete_fields = ["user"]
