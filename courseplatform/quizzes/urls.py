from django.urls import path

from . import views

app_name = "quizzes"

urlpatterns = [
    path("", views.index, name="index"),
    path("import/", views.import_gift_view, name="import_gift"),
    path("resync/", views.resync, name="resync"),
    path("attempt/<int:attempt_id>/", views.take, name="take"),
    path("attempt/<int:attempt_id>/answer/<int:item_id>/", views.answer, name="answer"),
    path("attempt/<int:attempt_id>/check/<int:item_id>/", views.check, name="check"),
    path("attempt/<int:attempt_id>/checks/<int:check_id>/", views.check_status, name="check_status"),
    path("attempt/<int:attempt_id>/submit/", views.submit, name="submit"),
    path("attempt/<int:attempt_id>/result/", views.result, name="result"),
    path("<slug:quiz_slug>/", views.detail, name="detail"),
    path("<slug:quiz_slug>/start/", views.start, name="start"),
    path("<slug:quiz_slug>/settings/", views.quiz_settings, name="settings"),
    path("<slug:quiz_slug>/stats/", views.stats, name="stats"),
    path("<slug:quiz_slug>/attempts/", views.attempts, name="attempts"),
    path("<slug:quiz_slug>/extensions/", views.extensions, name="extensions"),
    path("<slug:quiz_slug>/regrade/", views.regrade, name="regrade"),
    path("<slug:quiz_slug>/questions/<int:question_id>/edit/", views.edit_question, name="edit_question"),
]
