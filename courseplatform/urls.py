from django.contrib import admin
from django.urls import include, path

from courseplatform.submissions import clientwheel

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("courses/<slug:course_slug>/assignments/", include("courseplatform.submissions.urls")),
    path("courses/<slug:course_slug>/quizzes/", include("courseplatform.quizzes.urls")),
    path("courses/<slug:course_slug>/projects/", include("courseplatform.projects.urls")),
    path("courses/<slug:course_slug>/gradebook/", include("courseplatform.gradebook.urls")),
    path("api/", include("courseplatform.submissions.api_urls")),
    path("client/<str:name>", clientwheel.serve, name="client-wheel"),  # the student client's wheel
    path("", include("courseplatform.courses.urls")),
]
