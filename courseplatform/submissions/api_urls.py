"""Mounted at /api/ by courseplatform/urls.py: the API (with ninja's docs at /api/docs) and the token page."""
from django.urls import path

from . import views
from .api import api

urlpatterns = [
    path("profile/", views.profile, name="api-profile"),
    path("", api.urls),
]
