"""Fuzzing the trusted side's decoders: whatever bytes come in, the only exception is the one the
engine turns into a message (SubmissionError for uploads, ProtocolError for sandbox frames), and
every result string is clean. Deterministic (derandomized) so a failure reproduces."""
from __future__ import annotations

import io
import json
import socket
import struct
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grader.errors import SubmissionError
from grader.intake.submission import decode, load_notebook_json
from grader.sandbox import protocol
from grader.text import clean, clean_result

FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

SOURCE = b"import torch\n\ndef attention(q, k, v, mask=None):\n    return q @ k.transpose(-2, -1)\n"
NOTEBOOK = json.dumps({
    "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": ["# Title\n", "text"]},
        {"cell_type": "code", "metadata": {}, "execution_count": 1, "outputs": [
            {"output_type": "stream", "name": "stdout", "text": ["hi\n"]}],
         "source": ["%matplotlib inline\n", "def attention(q, k, v):\n", "    return q\n"]},
    ],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    "nbformat": 4, "nbformat_minor": 5,
}).encode()


def _zip(members: dict[str, bytes], method=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


ZIP = _zip({"proj/submission.py": SOURCE, "proj/helper.py": b"X = 1\n", "proj/notes.txt": b"n" * 300})
ZIP_NB = _zip({"submission.ipynb": NOTEBOOK}, zipfile.ZIP_STORED)
SEEDS = [("submission.py", SOURCE), ("submission.ipynb", NOTEBOOK), ("submission.zip", ZIP), ("submission.zip", ZIP_NB)]


@st.composite
def mutated(draw, seed: bytes):
    """seed with random byte flips, insertions, deletions and truncation."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 12))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "splice"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete" and data:
            del data[pos:pos + draw(st.integers(1, 32))]
        elif op == "truncate":
            del data[pos:]
        elif op == "splice":
            data[pos:pos] = draw(st.sampled_from([b"\x00", b"\xff\xfe", b"\\ud800", b"[" * 2000, b"\xed\xa0\x80",
                                                  b"\x1b]52;c;aGk=\x07", b'"cells": 5', b"PK\x03\x04"]))
    return bytes(data)


def _decode_ok_or_refused(filename: str, data: bytes) -> None:
    try:
        decoded = decode(filename, data, module="submission")
    except SubmissionError as exc:
        assert type(exc) is SubmissionError and str(exc).strip(), repr(exc)
        return
    # accepted: everything it produced is plain data the sandbox can receive
    assert isinstance(decoded.files, dict) and decoded.main in decoded.files
    for name, content in decoded.files.items():
        assert isinstance(name, str) and isinstance(content, bytes)
        name.encode("utf-8")
    if decoded.notebook is not None:
        decoded.notebook.encode("utf-8")


@FUZZ
@given(st.data())
def test_mutated_uploads_are_decoded_or_refused(data):
    filename, seed = data.draw(st.sampled_from(SEEDS))
    _decode_ok_or_refused(filename, data.draw(mutated(seed)))


@FUZZ
@given(st.sampled_from(["a.py", "a.ipynb", "a.zip"]), st.binary(max_size=4096))
def test_random_bytes_are_decoded_or_refused(filename, blob):
    _decode_ok_or_refused(filename, blob)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(alphabet=st.characters(), max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=40,
)


@FUZZ
@given(json_values)
def test_notebook_json_of_any_shape_is_refused_with_a_message(value):
    """Wrong types anywhere (cells a number, a cell a list, source a dict, ...)."""
    text = json.dumps({"cells": value, "metadata": value, "nbformat": 4, "nbformat_minor": 5})
    try:
        decode("nb.ipynb", text.encode(), module="submission")
    except SubmissionError as exc:
        assert "nb.ipynb" in str(exc)


def test_known_parser_crashes_are_refusals():
    """The malformed uploads that used to crash the parsers, each refused with its own message."""
    deep = b'{"cells": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    surrogate = NOTEBOOK.replace(b"hi\\n", b"\\ud800")
    corrupt = bytearray(ZIP)
    start = corrupt.index(b"submission.py") + len(b"submission.py")
    corrupt[start + 5:start + 25] = b"\x00" * 20  # inside the deflate stream: zlib.error
    bad_crc = bytearray(_zip({"submission.py": SOURCE}, zipfile.ZIP_STORED))
    bad_crc[bad_crc.index(b"import torch")] ^= 0x20
    cases = {
        "deep.ipynb": (deep, "nested too deeply"),
        "sur.ipynb": (surrogate, "surrogate"),
        "nul.py": (b"x = 1\x00\n", "NUL"),
        "latin.py": ("x = 'é'\n".encode("latin-1"), "UTF-8"),
        "corrupt.zip": (bytes(corrupt), "damaged"),
        "crc.zip": (bytes(bad_crc), "damaged"),
        "nested.zip": (_zip({"submission.py": SOURCE, "inner.zip": ZIP}), "another archive"),
        "escape.zip": (_zip({"../evil.py": SOURCE}), "unsafe path"),
        "dup.zip": (_zip({"a/submission.py": SOURCE, "b/submission.py": SOURCE}), "must contain"),
    }
    for name, (blob, expect) in cases.items():
        with pytest.raises(SubmissionError, match=expect):
            decode(name, blob, module="submission")


def test_special_files_symlinks_encrypted_and_bombs_in_zips():
    def with_mode(mode: int, name="submission.py", flag=0) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            zf.writestr(info, SOURCE)
        raw = bytearray(buf.getvalue())
        if flag:  # set the general-purpose flag in the local and the central header
            raw[6] |= flag
            central = raw.index(b"PK\x01\x02")
            raw[central + 8] |= flag
        return bytes(raw)

    with pytest.raises(SubmissionError, match="symbolic link"):
        decode("l.zip", with_mode(0o120777), module="submission")
    with pytest.raises(SubmissionError, match="special file"):
        decode("f.zip", with_mode(0o010644), module="submission")  # a FIFO
    with pytest.raises(SubmissionError, match="special file"):
        decode("d.zip", with_mode(0o020644), module="submission")  # a character device
    with pytest.raises(SubmissionError, match="encrypted"):
        decode("e.zip", with_mode(0o100644, flag=0x1), module="submission")
    bomb = _zip({"submission.py": b"#" * (30 * 1024 * 1024)})
    with pytest.raises(SubmissionError, match="more than|zip bomb"):
        decode("bomb.zip", bomb, module="submission")
    assert decode("ok.zip", with_mode(0o100644), module="submission").main == "submission.py"


# --------------------------------------------------------------------------- sandbox frames


@FUZZ
@given(st.binary(max_size=2048))
def test_random_frames_raise_protocol_errors_only(blob):
    a, b = socket.socketpair()
    try:
        a.sendall(blob)
        a.shutdown(socket.SHUT_WR)
        try:
            header, tblob = protocol.recv_frame(b, deadline=None, max_bytes=1 << 20)
            protocol.decode(header.get("value"), protocol.unpack_tensors(tblob), on_handle=lambda h, t: (h, t))
        except protocol.ProtocolError:
            pass
    finally:
        a.close()
        b.close()


@FUZZ
@given(json_values)
def test_decoding_any_json_raises_protocol_errors_only(value):
    try:
        protocol.decode(value, {}, on_handle=lambda h, t: (h, t))
    except protocol.ProtocolError:
        pass


def _tensor_blob() -> bytes:
    import torch

    return protocol.pack_tensors({"t0": torch.arange(12.0).reshape(3, 4), "t1": torch.ones(2, dtype=torch.int64)})


@FUZZ
@given(st.data())
def test_mutated_safetensors_blobs_raise_protocol_errors_only(data):
    blob = data.draw(mutated(_tensor_blob()))
    try:
        protocol.unpack_tensors(blob)
    except protocol.ProtocolError:
        pass


def test_safetensors_header_limits():
    n = 20_000
    meta = {f"t{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for i in range(n)}
    head = json.dumps(meta).encode()
    with pytest.raises(protocol.ProtocolError):  # over 1 MiB of header, or over MAX_TENSORS
        protocol.unpack_tensors(struct.pack("<Q", len(head)) + head)
    small = {f"t{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for i in range(protocol.MAX_TENSORS + 1)}
    head = json.dumps(small, separators=(",", ":")).encode()
    assert len(head) < protocol.MAX_TENSOR_HEADER
    with pytest.raises(protocol.ProtocolError, match="too many tensors"):
        protocol.unpack_tensors(struct.pack("<Q", len(head)) + head)
    dims = {"t": {"dtype": "F32", "shape": [1] * 40, "data_offsets": [0, 4]}}
    head = json.dumps(dims).encode()
    with pytest.raises(protocol.ProtocolError, match="bad shape"):
        protocol.unpack_tensors(struct.pack("<Q", len(head)) + head + b"\0\0\0\0")
    assert protocol.check_tensor_blob(_tensor_blob()) == 2


# --------------------------------------------------------------------------- cleaning

BAD_CHARS = [chr(c) for c in range(0x20) if c not in (9, 10)] + [chr(c) for c in range(0x7F, 0xA0)]


@FUZZ
@given(st.text(alphabet=st.one_of(st.characters(), st.sampled_from(["\ud800", "\udfff", "\x1b", "\x00", "\x9b",
                                                                    "\r", "\x7f", "\u202e"])), max_size=200))
def test_clean_text_is_utf8_without_controls(text):
    out = clean(text)
    out.encode("utf-8")  # no lone surrogates left
    assert not any(ch in out for ch in BAD_CHARS)
    assert clean(out) == out  # idempotent
    kept = [ch for ch in text if ch.isalnum() and not 0xD800 <= ord(ch) <= 0xDFFF]
    assert [ch for ch in out if ch.isalnum()] == kept  # only the dangerous characters go


def test_clean_result_handles_keys_floats_and_surrogates():
    res = clean_result({"a\x00": ["\ud800x", float("nan"), float("inf"), 1.5, True, None, 3],
                        "m": {"\x1b[2J": "\x1b]52;c;aGVsbG8=\x07ok\r\n"}})
    assert res == {"a": ["\ufffdx", None, None, 1.5, True, None, 3], "m": {"[2J": "]52;c;aGVsbG8=ok\n"}}
    json.dumps(res, allow_nan=False).encode("utf-8")
