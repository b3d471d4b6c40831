"""A Check never takes the GPU from a submission (issue 27, item 4): a Check of a GPU pack is sent to
the CPU queue and graded there by the real engine with the CPU device (so the pack's small CPU
settings); submissions of the same pack still go to the GPU queue."""
from __future__ import annotations

from pathlib import Path

import pytest
from django.urls import reverse

from cp_helpers import py, write_pack
from courseplatform.submissions import tasks
from courseplatform.submissions.models import Submission

pytestmark = pytest.mark.django_db

DEVICE_TESTS = '''from grader.authoring import Fail, case


@case(points=10, visible=True)
def runs_on_the_cpu_device(ctx):
    """the grade runs with the CPU device"""
    if ctx.device != "cpu":
        raise Fail(f"device {ctx.device}")
    if ctx.sub.call("double", 3) != 6:
        raise Fail("double(3) should be 6")
'''


def _sent(monkeypatch):
    sent = []
    monkeypatch.setattr(tasks.grade_submission, "apply_async",
                        lambda args, queue: sent.append(queue) or type("R", (), {"id": "tid"})())
    return sent


def test_a_check_of_a_gpu_pack_goes_to_the_cpu_queue_and_a_submission_to_the_gpu(
        client_for, student, assignment, django_capture_on_commit_callbacks, monkeypatch):
    assignment.queue = "gpu"
    assignment.save()
    sent = _sent(monkeypatch)
    c = client_for(student)
    for name in ("submit", "check"):
        with django_capture_on_commit_callbacks(execute=True):
            response = c.post(reverse(f"submissions:{name}", args=[assignment.course.slug, assignment.slug]),
                              {"file": py()})
        assert response.status_code in (200, 302), response.content[:300]
    vias = list(Submission.objects.order_by("pk").values_list("via", flat=True))
    assert vias == ["web", "check"] and sent == ["gpu", "cpu"]


def test_the_sweeper_looks_for_a_gpu_packs_checks_on_the_cpu_queue(student, assignment):
    assignment.queue = "gpu"
    assignment.save()
    for via in ("web", "check"):
        Submission.objects.create(assignment=assignment, student=student, sha256="0" * 64, blob="x", kind="py", size=1,
                                  original_name="tiny.py", via=via, state="queued")
    assert tasks.SubmissionJob().queues() == ["cpu", "gpu"]


@pytest.mark.slow
def test_the_engine_grades_a_gpu_packs_check_on_the_cpu_with_the_cpu_device(tmp_path):
    from grader import api
    from grader.errors import GraderError

    pack = write_pack(tmp_path / "packs", queue="gpu")
    (pack / "tests.py").write_text(DEVICE_TESTS)
    result = api.grade(pack, "tiny.py", b"def double(x):\n    return 2 * x\n", only_visible=True, queue="cpu")
    assert result["status"] == "graded" and result["score"] == 10, result["message"]
    with pytest.raises(GraderError, match="unknown queue"):
        api.grade(pack, "tiny.py", b"def double(x):\n    return 2 * x\n", queue="tpu")
    assert Path(pack).is_dir()


def test_without_the_policy_a_gpu_packs_check_waits_on_the_gpu_queue(
        client_for, student, assignment, django_capture_on_commit_callbacks, monkeypatch, settings):
    """GPU_CHECKS_ON_CPU=0 (bench/gpu_queue.py --checks measures the policy against it): every grade
    on its pack's queue, in the routing, the sweeper's queues and the queue page's counts alike."""
    from courseplatform.submissions import dispatch

    settings.GPU_CHECKS_ON_CPU = False
    assignment.queue = "gpu"
    assignment.save()
    sent = _sent(monkeypatch)
    c = client_for(student)
    with django_capture_on_commit_callbacks(execute=True):
        response = c.post(reverse("submissions:check", args=[assignment.course.slug, assignment.slug]), {"file": py()})
    assert response.status_code in (200, 302), response.content[:300]
    assert sent == ["gpu"]
    Submission.objects.update(state="queued")
    assert tasks.SubmissionJob().queues() == ["gpu"]
    assert Submission.objects.filter(dispatch.on_queue("gpu")).count() == 1
    assert not Submission.objects.filter(dispatch.on_queue("cpu")).exists()
    settings.GPU_CHECKS_ON_CPU = True
    assert tasks.SubmissionJob().queues() == ["cpu"]
    assert Submission.objects.filter(dispatch.on_queue("cpu")).count() == 1
