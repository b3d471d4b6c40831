"""Artifacts out of the result JSON: every stored result's artifacts (data_b64) become files in
MEDIA_ROOT (artifacts.ARTIFACT_DIR, by content hash) and the result keeps name, type, sha256 and
size (courseplatform/submissions/artifacts.py). Reversible: the bytes go back into data_b64."""
import base64

from django.db import migrations


def _with_artifacts(apps):
    Submission = apps.get_model("submissions", "Submission")
    return Submission, Submission.objects.filter(result__has_key="artifacts").only("pk", "result")


def forwards(apps, schema_editor):
    from courseplatform.submissions import artifacts

    Submission, rows = _with_artifacts(apps)
    for sub in rows.iterator(chunk_size=200):
        stored = artifacts.store(sub.result)
        if stored != sub.result:
            Submission.objects.filter(pk=sub.pk).update(result=stored)


def backwards(apps, schema_editor):
    from courseplatform.submissions import artifacts

    Submission, rows = _with_artifacts(apps)
    for sub in rows.iterator(chunk_size=200):
        back = []
        for art in sub.result.get("artifacts") or []:
            if isinstance(art, dict) and "sha256" in art and "data_b64" not in art:
                try:
                    data = base64.b64encode(artifacts.read(art)).decode()
                except ValueError:
                    data = ""
                art = {k: v for k, v in art.items() if k not in ("sha256", "size")} | {"data_b64": data}
            back.append(art)
        Submission.objects.filter(pk=sub.pk).update(result={**sub.result, "artifacts": back})


class Migration(migrations.Migration):

    dependencies = [
        ("submissions", "0003_ops_lease_fair_tier"),
    ]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
