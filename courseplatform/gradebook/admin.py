from django.contrib import admin

from .models import CategoryWeights


@admin.register(CategoryWeights)
class CategoryWeightsAdmin(admin.ModelAdmin):
    list_display = ("course", "assignments", "quizzes", "milestones", "attendance", "updated_at")
