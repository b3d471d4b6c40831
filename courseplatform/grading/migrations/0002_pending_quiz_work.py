"""Quiz code answers and checks left pending before the one grading path existed had no lease: give
each a queued job, so that the sweeper sends it (its old message named a task that no longer exists)."""
from django.db import migrations


def forwards(apps, schema_editor):
    GradingJob = apps.get_model("grading", "GradingJob")
    AttemptQuestion = apps.get_model("quizzes", "AttemptQuestion")
    CodeCheck = apps.get_model("quizzes", "CodeCheck")
    jobs = [GradingJob(kind="quiz-answer", object_id=pk, message="Queued.")
            for pk in AttemptQuestion.objects.filter(grading_state="pending").values_list("pk", flat=True)]
    jobs += [GradingJob(kind="quiz-check", object_id=pk, message="Queued.")
             for pk in CodeCheck.objects.filter(state="pending").values_list("pk", flat=True)]
    GradingJob.objects.bulk_create(jobs, ignore_conflicts=True)


class Migration(migrations.Migration):

    dependencies = [
        ("grading", "0001_initial"),
        ("quizzes", "0004_attempt_open_deadline"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
