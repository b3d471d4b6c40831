from django.contrib import admin
from django.shortcuts import redirect
from django.templatetags.static import static
from django.urls import include, path

from courseplatform.ops import views as ops_views
from courseplatform.live import views as live_views
from courseplatform.submissions import clientwheel

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("courses/<slug:course_slug>/assignments/", include("courseplatform.submissions.urls")),
    path("courses/<slug:course_slug>/quizzes/", include("courseplatform.quizzes.urls")),
    path("courses/<slug:course_slug>/projects/", include("courseplatform.projects.urls")),
    path("courses/<slug:course_slug>/gradebook/", include("courseplatform.gradebook.urls")),
    path("courses/<slug:course_slug>/similarity/", include("courseplatform.similarity.urls")),
    path("courses/<slug:course_slug>/live/", include("courseplatform.live.urls")),
    path("live/", live_views.join, name="live-join"),  # the code from the projector, in one's own courses
    path("api/", include("courseplatform.submissions.api_urls")),
    # Browsers ask for /favicon.ico whatever the page links: the site's icon, not a 404 on every page.
    # Resolved per request (the hashed name from the static manifest), and not permanent: it changes.
    path("favicon.ico", lambda request: redirect(static("favicon.svg")), name="favicon"),
    path("client/<str:name>", clientwheel.serve, name="client-wheel"),  # the student client's wheel
    path("metrics", ops_views.metrics, name="metrics"),  # Prometheus; bearer METRICS_TOKEN or an administrator
    path("", include("courseplatform.lti.urls")),  # LTI 1.3: lti/... and courses/<slug>/lti/...
    path("", include("courseplatform.courses.urls")),
]
