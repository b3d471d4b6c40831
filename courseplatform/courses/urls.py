from django.urls import path

from . import views

app_name = "courses"

urlpatterns = [
    path("", views.home, name="home"),
    path("courses/<slug:course_slug>/", views.dashboard, name="dashboard"),
    path("courses/<slug:course_slug>/settings/", views.course_settings, name="settings"),
    path("courses/<slug:course_slug>/roster/", views.roster, name="roster"),
    path("courses/<slug:course_slug>/roster/enrol/", views.enrol, name="enrol"),
    path("courses/<slug:course_slug>/roster/enrol/links.csv", views.enrol_links_csv, name="enrol_links_csv"),
    path("courses/<slug:course_slug>/roster/template.csv", views.enrol_template_csv, name="enrol_template"),
    path("courses/<slug:course_slug>/roster/<int:member_id>/role/", views.member_role, name="member_role"),
    path("courses/<slug:course_slug>/roster/<int:member_id>/remove/", views.member_remove, name="member_remove"),
    path("courses/<slug:course_slug>/roster/<int:member_id>/invite/", views.member_invite, name="member_invite"),
    path("courses/<slug:course_slug>/sessions/", views.sessions, name="sessions"),
    path("courses/<slug:course_slug>/sessions/new/", views.session_edit, name="session_new"),
    path("courses/<slug:course_slug>/sessions/weekly/", views.sessions_weekly, name="sessions_weekly"),
    path("courses/<slug:course_slug>/sessions/<int:session_id>/", views.session_attendance, name="session_attendance"),
    path("courses/<slug:course_slug>/sessions/<int:session_id>/edit/", views.session_edit, name="session_edit"),
    path("courses/<slug:course_slug>/sessions/<int:session_id>/delete/", views.session_delete, name="session_delete"),
    path("courses/<slug:course_slug>/attendance/", views.attendance_overview, name="attendance"),
    path("courses/<slug:course_slug>/attendance/<int:user_id>/", views.student_attendance, name="student_attendance"),
]
