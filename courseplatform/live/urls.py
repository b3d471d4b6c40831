from django.urls import path

from . import views

app_name = "live"

urlpatterns = [
    path("", views.index, name="index"),
    path("start/", views.start, name="start"),
    path("settings/", views.live_settings, name="settings"),
    path("<int:live_id>/", views.phone, name="phone"),
    path("<int:live_id>/me.json", views.me, name="me"),
    path("<int:live_id>/answer/", views.answer, name="answer"),
    path("<int:live_id>/control/", views.control, name="control"),
    path("<int:live_id>/action/", views.action, name="action"),
    path("<int:live_id>/projector/", views.projector, name="projector"),
    path("<int:live_id>/qr.svg", views.qr_code, name="qr"),
    path("<int:live_id>/results/", views.results, name="results"),
]
