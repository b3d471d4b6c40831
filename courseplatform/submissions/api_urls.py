"""Mounted at /api/ by courseplatform/urls.py: the API, its docs assets and the token page."""
from django.urls import path

from . import views
from .api import api, docs_asset

urlpatterns = [
    path("profile/", views.profile, name="api-profile"),
    path("docs-assets/<str:name>", docs_asset, name="api-asset"),
    path("", api.urls),
]
