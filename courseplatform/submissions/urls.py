from django.urls import path

from . import queue_views, views

app_name = "submissions"

urlpatterns = [
    path("", views.index, name="index"),
    path("submission/<int:pk>/", views.submission_status, name="status"),
    path("submission/<int:pk>/file/", views.submission_file, name="file"),
    path("submission/<int:pk>/artifact/<int:index>/", views.submission_artifact, name="artifact"),
    path("submission/<int:pk>/notebook/<int:index>/", views.notebook_view, name="notebook"),
    path("submission/<int:pk>/notebook/<int:index>/frame/", views.notebook_frame, name="notebook_frame"),
    path("submission/<int:pk>/image/<int:index>/", views.artifact_image, name="artifact_image"),
    path("packs/upload/", views.pack_uploads, name="pack_uploads"),
    path("packs/upload/<int:pk>/", views.pack_upload, name="pack_upload"),
    path("queue/", queue_views.staff_queue, name="queue"),
    path("<slug:slug>/", views.detail, name="detail"),
    path("<slug:slug>/leaderboard/", views.leaderboard, name="leaderboard"),
    path("<slug:slug>/submit/", views.submit, name="submit"),
    path("<slug:slug>/check/", views.check_view, name="check"),
    path("<slug:slug>/starter.<str:kind>", views.starter, name="starter"),
    path("<slug:slug>/staff/", views.staff_overview, name="staff"),
    path("<slug:slug>/staff/student/<int:user_id>/", views.staff_student, name="staff_student"),
    path("<slug:slug>/staff/regrade/", views.regrade, name="regrade"),
    path("<slug:slug>/staff/resync/", views.resync, name="resync"),
    path("<slug:slug>/staff/export.zip", views.export, name="export"),
    path("<slug:slug>/staff/settings/", views.edit_settings, name="settings"),
    path("<slug:slug>/staff/extensions/", views.extensions, name="extensions"),
]
