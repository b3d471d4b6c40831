"""django-lti registers its own admin (registrations with deployments, keys); these are ours."""
from django.contrib import admin

from .models import CourseLink, LineItem, Passback


@admin.register(CourseLink)
class CourseLinkAdmin(admin.ModelAdmin):
    list_display = ["context", "course", "linked_by", "created_at", "roster_synced_at"]
    raw_id_fields = ["context", "linked_by"]


@admin.register(LineItem)
class LineItemAdmin(admin.ModelAdmin):
    list_display = ["activity", "link", "url", "score_maximum"]


@admin.register(Passback)
class PassbackAdmin(admin.ModelAdmin):
    list_display = ["user", "activity", "state", "score_given", "score_maximum", "tries", "sent_at", "reason"]
    list_filter = ["state"]
    readonly_fields = [f.name for f in Passback._meta.fields]
