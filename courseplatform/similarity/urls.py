from django.urls import path

from . import views

app_name = "similarity"

urlpatterns = [
    path("<slug:slug>/", views.report, name="report"),
    path("<slug:slug>/status/", views.status, name="status"),
    path("<slug:slug>/start/", views.start, name="start"),
    path("<slug:slug>/settings/", views.edit_settings, name="settings"),
    path("<slug:slug>/export.csv", views.export, name="export"),
    path("<slug:slug>/sources/", views.sources, name="sources"),
    path("<slug:slug>/pair/<int:pair_id>/", views.pair, name="pair"),
    path("<slug:slug>/pair/<int:pair_id>/review/", views.review, name="review"),
]
