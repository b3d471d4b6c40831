from django.urls import path

from . import views

app_name = "gradebook"

urlpatterns = [
    path("", views.index, name="index"),
    path("weights/", views.weights, name="weights"),
    path("export.csv", views.export_csv, name="export"),
]
