"""How many sandboxes one GPU worker runs at once, and the GPU worker's launcher.

A GPU pack states what one grade needs on the device with `[limits] gpu_memory_mb` in its
assignment.toml (DEFAULT_GPU_MEMORY_MB when it does not). A worker bound to one device
(CUDA_VISIBLE_DEVICES / the container's device reservation: each sandbox sees only that device)
runs floor((device memory - GPU_RESERVE_MB) / the largest need among the course's gpu packs)
gradings at once, at least one and at most GPU_MAX_CONCURRENCY.

    python -m courseplatform.submissions.gpu worker -Q gpu,ops -n gpu@%h -l INFO
        computes the concurrency (GPU_WORKER_CONCURRENCY=auto, or a number) and execs `celery worker`.
    python -m courseplatform.submissions.gpu plan
        prints the device memory, the packs' needs and the concurrency, and exits.
"""
from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path

from grader.api import DEFAULT_LIMITS

DEFAULT_GPU_MEMORY_MB = int(DEFAULT_LIMITS["gpu_memory_mb"])  # one default, the engine's
GPU_MAX_CONCURRENCY = 16


def pack_gpu_memory_mb(pack_dir: Path) -> int:
    """The pack's declared need on the device ([limits] gpu_memory_mb), or the default."""
    try:
        meta = tomllib.loads((Path(pack_dir) / "assignment.toml").read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return DEFAULT_GPU_MEMORY_MB
    value = (meta.get("limits") or {}).get("gpu_memory_mb")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return int(value)
    return DEFAULT_GPU_MEMORY_MB


def device_memory_mb() -> int | None:
    """Total memory of the first visible CUDA device (None without one)."""
    try:
        import torch

        if not torch.cuda.is_available():
            return None
        _free, total = torch.cuda.mem_get_info(0)
        return int(total // (1024 * 1024))
    except Exception:
        return None


def concurrency_for(device_mb: int | None, needs_mb: list[int], reserve_mb: int = 2048,
                    maximum: int = GPU_MAX_CONCURRENCY) -> int:
    """Sandboxes that fit on the device at once: at least 1 (a device too small still grades, one at a time)."""
    if not device_mb:
        return 1
    need = max(needs_mb) if needs_mb else DEFAULT_GPU_MEMORY_MB
    return max(1, min(maximum, (device_mb - reserve_mb) // max(1, need)))


def gpu_pack_needs() -> dict[str, int]:
    """{assignment slug: gpu_memory_mb} for the synced packs on the gpu queue."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "courseplatform.settings")
    django.setup()
    from .models import Assignment

    needs = {}
    for slug, path in Assignment.objects.filter(queue="gpu").exclude(pack_path="").values_list("slug", "pack_path"):
        needs[slug] = pack_gpu_memory_mb(Path(path))
    return needs


def plan() -> dict:
    device = device_memory_mb()
    try:
        needs = gpu_pack_needs()
    except Exception as exc:  # no database yet: size for the default need
        print(f"cannot read the gpu packs ({exc}); assuming {DEFAULT_GPU_MEMORY_MB} MB each", file=sys.stderr)
        needs = {}
    from django.conf import settings

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "courseplatform.settings")
    reserve = int(settings.GPU_RESERVE_MB)
    wanted = str(settings.GPU_WORKER_CONCURRENCY)
    if wanted.isdigit() and int(wanted) > 0:
        concurrency = int(wanted)
    else:
        concurrency = concurrency_for(device, list(needs.values()), reserve)
    return {"device_mb": device, "reserve_mb": reserve, "needs_mb": needs, "concurrency": concurrency}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("worker", "plan"):
        print(__doc__, file=sys.stderr)
        return 2
    p = plan()
    print(f"GPU plan: device {p['device_mb']} MB, reserve {p['reserve_mb']} MB, packs {p['needs_mb'] or '-'} "
          f"-> {p['concurrency']} concurrent sandbox(es)", flush=True)
    if argv[0] == "plan":
        return 0
    cmd = [sys.executable, "-m", "celery", "-A", "courseplatform", "worker", "-c", str(p["concurrency"]), *argv[1:]]
    os.execv(sys.executable, cmd)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
