"""Engine API: handles and module protocol, nbclient inside the sandbox, pack validation, the
wire protocol, and recovery when the sandbox parent dies."""
from __future__ import annotations

import json
import os
import signal
import socket

import nbformat
import pytest
import torch

from grader.api import grade
from grader.authoring.pack import load_pack
from grader.errors import GraderError, PackError
from grader.sandbox import pool, protocol
from grader_testutil import ATTENTION, PACKS, REFERENCE


def test_module_handles_state_dict_and_parameters(grade_src):
    res = grade_src((PACKS / "module" / "reference.py").read_text(), pack=PACKS / "module", filename="net.py")
    assert res["status"] == "graded" and res["score"] == 4.0, [t["message"] for t in res["tests"]]
    wrong = (PACKS / "module" / "reference.py").read_text().replace("nn.Linear(d, d)", "nn.Linear(d, d, bias=False)")
    res = grade_src(wrong, pack=PACKS / "module", filename="net.py")
    msgs = {t["id"]: t["message"] for t in res["tests"]}
    assert "expected 20 parameters, got 16" in msgs["construct_and_count"]
    assert "Unexpected key(s) in state_dict: \"lin.bias\"" in msgs["load_weights_and_forward"]


def test_notebook_is_executed_with_nbclient_inside_the_sandbox(grade_src):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("%matplotlib inline\n!pip install requests\nimport math"),
                nbformat.v4.new_code_cell("answer = 6 * 7\nprint(answer)")]
    res = grade_src(nbformat.writes(nb).encode(), pack=PACKS / "notebook", filename="hw.ipynb")
    assert res["status"] == "graded" and res["score"] == 2.0, [t["message"] for t in res["tests"]]
    assert res["metrics"] == {"answer": 42.0}
    art = res["artifacts"][0]
    assert art["name"] == "executed.ipynb"
    import base64

    executed = json.loads(base64.b64decode(art["data_b64"]))
    assert "".join(executed["cells"][1]["outputs"][0]["text"]) == "42\n"
    # a .py is refused for a notebook-only pack, with a message
    res = grade_src("answer = 42\n", pack=PACKS / "notebook", filename="hw.py")
    assert res["status"] == "error" and ".ipynb" in res["message"]


def test_pack_validation_messages(tmp_path):
    def pack(toml, tests=None):
        d = tmp_path / f"p{len(list(tmp_path.iterdir()))}"
        d.mkdir()
        (d / "assignment.toml").write_text(toml)
        (d / "reference.py").write_text(REFERENCE)
        (d / "tests.py").write_text(tests if tests is not None else (ATTENTION / "tests.py").read_text())
        return d

    with pytest.raises(PackError, match="missing required field 'title'"):
        load_pack(pack("points = 10\n"))
    with pytest.raises(PackError, match="queue must be one of cpu, gpu"):
        load_pack(pack('title = "x"\npoints = 10\nqueue = "tpu"\n'))
    with pytest.raises(PackError, match="unknown limit"):
        load_pack(pack('title = "x"\npoints = 10\n[limits]\nwal_s = 3\n'))
    with pytest.raises(PackError, match="accepted must be"):
        load_pack(pack('title = "x"\npoints = 10\naccepted = ["exe"]\n'))
    with pytest.raises(PackError, match="wall_s must be a number"):
        load_pack(pack('title = "x"\npoints = 10\n[limits]\nwall_s = "long"\n'))
    with pytest.raises(PackError, match=r"assignment.toml: Illegal character .* \(at line 1"):
        load_pack(pack('title = "x\n'))
    with pytest.raises(PackError, match="defines no @case"):
        load_pack(pack('title = "x"\npoints = 1\n', tests="x = 1\n")).cases()
    with pytest.raises(GraderError, match="add up to 10"):
        grade(pack('title = "x"\npoints = 3\n'), "a.py", b"")
    ok = load_pack(pack('title = "x"\npoints = 10\n'))
    assert ok.meta["limits"]["wall_s"] == 60.0 and ok.meta["late"]["max_days"] == 3 and ok.meta["preload"] == ["torch"]
    meta = load_pack(ATTENTION).meta
    assert meta["module"] == "attention" and meta["limits"]["case_s"] == 10.0 and meta["late"]["grace_minutes"] == 15


def test_protocol_round_trip_and_refusals():
    value = {"a": (1, 2.5, float("nan")), 3: [torch.arange(4), torch.zeros(2, 2, dtype=torch.float64)],
             "b": b"\x00\x01", "dt": torch.float16, "ok": None, "t": True}
    obj, tensors = protocol.encode(value)
    blob = protocol.pack_tensors(tensors)
    back = protocol.decode(json.loads(json.dumps(obj)), protocol.unpack_tensors(blob))
    assert back["a"][:2] == (1, 2.5) and back["a"][2] != back["a"][2]
    assert torch.equal(back[3][0], torch.arange(4)) and back[3][1].dtype == torch.float64
    assert back["b"] == b"\x00\x01" and back["dt"] is torch.float16 and back["ok"] is None and back["t"] is True
    for bad in ({"$t": "missing"}, {"$unknown": 1}, {"$h": 1}, {"$dict": [[[1], 2]]}, {"$dtype": "os"}, {}):
        with pytest.raises(protocol.ProtocolError):
            protocol.decode(bad, {})
    with pytest.raises(protocol.ProtocolError, match="malformed tensor data"):
        protocol.unpack_tensors(b"\x10\x00\x00\x00\x00\x00\x00\x00{not safetensors}")
    with pytest.raises(protocol.EncodeError, match="cannot be sent"):
        protocol.encode(object())
    a, b = socket.socketpair()
    try:
        a.sendall(b"\x7f\xff\xff\xff\x00\x00\x00\x00")
        with pytest.raises(protocol.ProtocolError, match="frame too large"):
            protocol.recv_frame(b, deadline=None, max_bytes=1024)
        a.sendall(protocol.HEADER.pack(3, 0) + b"[1]")
        with pytest.raises(protocol.ProtocolError, match="not an object"):
            protocol.recv_frame(b, deadline=None)
        import time

        with pytest.raises(protocol.FrameTimeout):
            protocol.recv_frame(b, deadline=time.monotonic() + 0.05)
    finally:
        a.close()
        b.close()


def test_worker_recovers_when_the_sandbox_parent_dies(grade_src):
    grade_src(REFERENCE)
    z = pool.get("cpu", ("torch",))
    os.kill(z.proc.pid, signal.SIGKILL)
    z.proc.wait()
    res = grade_src(REFERENCE)  # the pool restarts its zygote once and grades
    assert res["status"] == "graded" and res["score"] == 10.0
    assert pool.get("cpu", ("torch",)).proc.poll() is None


def test_concurrent_grades_from_threads(grade_src):
    """A threaded worker may grade several submissions at once through one pool."""
    from concurrent.futures import ThreadPoolExecutor

    wrong = (ATTENTION / "mutants" / "no_scaling.py").read_text()
    with ThreadPoolExecutor(4) as ex:
        results = list(ex.map(grade_src, [REFERENCE, wrong, REFERENCE, wrong]))
    assert [r["score"] for r in results] == [10.0, 1.5, 10.0, 1.5]


def test_large_tensors_cross_the_boundary(grade_src):
    """A driver can send a big state dict in (no size cap on trusted frames) and get tensors back."""
    res = grade_src((PACKS / "module" / "reference.py").read_text(), pack=PACKS / "module", filename="net.py")
    assert res["score"] == 4.0
    from grader.authoring.driver import Runner
    from grader.authoring.pack import load_pack
    from grader.intake.submission import decode

    pack = load_pack(PACKS / "module")
    runner = Runner(pack, decode("net.py", b"TinyNet = None\ndef make(d=4):\n    import torch\n    return torch.nn.Linear(d, d)\n",
                                 module="net"), pool.get("cpu", ("torch",)))
    runner.wall_deadline = None
    try:
        runner.ensure_sandbox()
        h = runner.proxy.call("make", 2048)
        big = {"weight": torch.randn(2048, 2048), "bias": torch.randn(2048)}  # 16 MiB
        assert h.load_state_dict(big) == {"missing": [], "unexpected": []}
        back = h.state_dict()
        assert torch.equal(back["weight"], big["weight"]) and h.num_parameters() == 2048 * 2048 + 2048
    finally:
        runner._retire()
