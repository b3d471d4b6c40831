"""The cgroup v2 path of grader/sandbox/cgroups.py, against a stand-in cgroupfs.

This host mounts the memory, pids and cpu controllers as cgroup v1 (its unified hierarchy has only
hugetlb), so the hostile tests in test_hostile_kernel.py exercise v1 in a real kernel. Production
hosts and containers mostly have v2: here the v2 code runs against a directory tree that looks like
a delegated v2 group (interface files appear with every mkdir, as in cgroupfs), and every value the
kernel would enforce is checked where v2 reads it, in the order written. What the kernel then does
with the values is not tested here (no v2 controllers on this machine); say so, not more.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from grader.sandbox import cgroups

INTERFACE = ("cgroup.procs", "cgroup.subtree_control", "cgroup.controllers", "memory.max", "memory.swap.max",
             "memory.events", "memory.peak", "memory.oom.group", "pids.max", "cpu.max", "cpu.weight")


@pytest.fixture
def fake_v2(tmp_path, monkeypatch):
    parent = tmp_path / "delegated"
    parent.mkdir()
    (parent / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma\n")
    (parent / "cgroup.subtree_control").write_text("")
    (parent / "cgroup.procs").write_text("")
    real_mkdir = os.mkdir

    def mkdir(path, mode=0o777, *args, **kwargs):
        real_mkdir(path, mode, *args, **kwargs)
        if str(path).startswith(str(parent)):
            for name in INTERFACE:
                (Path(path) / name).write_text("")

    writes: list[tuple[str, str]] = []
    real_write, real_pwrite = cgroups._write, cgroups._pwrite

    def write(path, value):
        writes.append((os.path.relpath(path, parent), str(value)))
        real_write(path, value)

    def pwrite(fd, value):
        writes.append((os.path.relpath(os.readlink(f"/proc/self/fd/{fd}"), parent), str(value)))
        real_pwrite(fd, value)

    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(cgroups, "_write", write)
    monkeypatch.setattr(cgroups, "_pwrite", pwrite)
    monkeypatch.setenv("GRADER_CGROUP_PARENT", str(parent))
    return parent, writes


def test_v2_base_group_enables_the_controllers_and_weighs_its_sandboxes(fake_v2):
    parent, writes = fake_v2
    m = cgroups.setup(prefix="grader-", cpu_cores=1.0, sandboxes=3)
    base = f"grader-{os.getpid()}"
    assert m.version == 2 and m.bases == {"": str(parent / base)}
    assert m.describe()["cgroup"] == "v2" and m.describe()["swap"] == "none"
    assert writes == [("cgroup.subtree_control", "+cpu +memory +pids"),
                      (f"{base}/cgroup.subtree_control", "+memory +pids +cpu"),
                      (f"{base}/cpu.weight", "300")]


def test_v2_sandbox_group_limits_memory_without_swap_pids_and_cpu(fake_v2):
    parent, writes = fake_v2
    m = cgroups.setup(prefix="grader-", cpu_cores=1.0, sandboxes=3)
    base = f"grader-{os.getpid()}"
    del writes[:]
    g = m.new_group("sb-1", memory_mb=1024, pids=64, spare_nice=19)   # a spare
    sb = f"{base}/sb-1"
    assert writes == [(f"{sb}/cpu.max", "100000 100000"),             # at most one core
                      (f"{sb}/cpu.weight", "1"),                       # a spare yields to a grading sandbox
                      (f"{sb}/memory.swap.max", "0"),                  # no swap
                      (f"{sb}/memory.oom.group", "1"),                 # an OOM kill ends the whole sandbox
                      (f"{sb}/memory.max", str(1024 << 20)),
                      (f"{sb}/pids.max", "64")]
    del writes[:]
    g.apply(2048, 32)                                                  # P takes a submission
    assert writes == [(f"{sb}/memory.max", str(2048 << 20)), (f"{sb}/pids.max", "32"), (f"{sb}/cpu.weight", "100")]
    # S's report after P died: the kernel's OOM kill count and the limit, as the trusted side words it
    (parent / sb / "memory.events").write_text("low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\noom_group_kill 1\n")
    (parent / sb / "memory.peak").write_text(str(2047 << 20))
    report = g.report()
    assert report["oom"] == 1 and report["failcnt"] == 7 and report["limit_mb"] == 2048 and report["peak_mb"] == 2047
    g.close_all()


def test_v2_without_the_controllers_refuses_with_what_to_do(fake_v2):
    parent, _ = fake_v2
    (parent / "cgroup.controllers").write_text("cpu io\n")
    with pytest.raises(cgroups.CgroupError, match=r"lacks the controllers \['memory', 'pids'\].*GRADER_CGROUP_PARENT"):
        cgroups.setup(prefix="grader-")
