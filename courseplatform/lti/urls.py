from django.urls import path

from . import views

app_name = "lti"

urlpatterns = [
    path("lti/jwks.json", views.jwks, name="jwks"),
    path("lti/login/", views.oidc_login, name="login"),
    path("lti/launch/", views.launch, name="launch"),
    path("lti/link/", views.link_course, name="link_course"),
    path("lti/deep-link/", views.deep_link, name="deep_link"),
    path("lti/registrations/", views.registrations, name="registrations"),
    path("lti/registrations/rotate-key/", views.rotate_key, name="rotate_key"),
    path("courses/<slug:course_slug>/lti/", views.course_page, name="course"),
    path("courses/<slug:course_slug>/lti/sync-roster/", views.sync_roster, name="sync_roster"),
    path("courses/<slug:course_slug>/lti/resend/", views.resend, name="resend"),
]
