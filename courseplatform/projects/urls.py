from django.urls import path

from . import views

app_name = "projects"

urlpatterns = [
    path("", views.index, name="index"),
    path("group/create/", views.group_create, name="group_create"),
    path("group/join/", views.group_join, name="group_join"),
    path("group/leave/", views.group_leave, name="group_leave"),
    path("groups/", views.groups, name="groups"),
    path("groups/action/", views.groups_action, name="groups_action"),
    path("literature-review-template.md", views.review_template, name="review_template"),
    path("milestones/new/", views.milestone_edit, name="milestone_new"),
    path("milestones/<int:pk>/", views.milestone_detail, name="milestone"),
    path("milestones/<int:pk>/edit/", views.milestone_edit, name="milestone_edit"),
    path("milestones/<int:pk>/groups/<int:group_id>/", views.delivery, name="delivery"),
    path("milestones/<int:pk>/groups/<int:group_id>/check/", views.delivery_check, name="delivery_check"),
    path("milestones/<int:pk>/groups/<int:group_id>/grade/", views.grade, name="grade"),
    path("milestones/<int:pk>/groups/<int:group_id>/grade/delete/", views.grade_delete, name="grade_delete"),
    path("versions/<int:version_id>/download/", views.version_download, name="download"),
    path("versions/<int:version_id>/view/", views.version_view, name="version_view"),
    path("versions/<int:version_id>/inline/", views.version_inline, name="version_inline"),
]
