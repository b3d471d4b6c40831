"""Length-prefixed frames between the trusted process and a sandbox.

A frame is ``>II`` (length of a UTF-8 JSON header, length of a safetensors blob), the header, then
the blob (possibly empty). Values are encoded as tagged JSON: every JSON object in a payload is a
tag (``$t`` tensor, ``$nd`` numpy array, ``$tuple``, ``$dict``, ``$b`` bytes, ``$h`` handle,
``$dtype``), so nothing a submission sends can be mistaken for something else. Tensors travel as
safetensors bytes. Nothing is ever unpickled; decoding builds plain Python objects and plain
``torch.Tensor``s from data.

This module is imported by the sandbox parent (zygote) too, so it must not import anything the
sandbox cannot see after the fork: only the standard library, torch, numpy and safetensors.
"""
from __future__ import annotations

import base64
import contextlib
import contextvars
import json
import os
import select
import socket
import struct
import time

HEADER = struct.Struct(">II")
# The JSON header of a frame from the sandbox: values and structure only (tensors travel in the
# safetensors blob), so 1 MiB is plenty. Frames the trusted side sends (the submission's files)
# are read by the sandbox with a larger limit (``max_header``).
MAX_HEADER = 1024 * 1024
_header_limit = contextvars.ContextVar("grader_header_limit", default=MAX_HEADER)
# Decoding a value from the sandbox: at most this many JSON nodes, and only these dict keys.
MAX_NODES = 500_000
MAX_INT_KEY = 2 ** 53       # int keys hash to themselves below 2**61-1: no crafted collisions
# The safetensors blob: its own JSON header, how many tensors, how many dimensions.
MAX_TENSOR_HEADER = 1024 * 1024
MAX_TENSORS = 10_000
MAX_DIMS = 32


@contextlib.contextmanager
def header_limit(nbytes: int):
    """Raise the header cap for the frames received inside the block (a reply that is one large
    string by design, e.g. an executed notebook); the blob and total limits still apply."""
    token = _header_limit.set(max(MAX_HEADER, int(nbytes)))
    try:
        yield
    finally:
        _header_limit.reset(token)


class ProtocolError(Exception):
    """The other side sent something that is not a valid frame (or nothing in time)."""


class PeerClosed(ProtocolError):
    """The other side closed the connection (usually: the sandbox process died)."""


class FrameTimeout(ProtocolError):
    """No complete frame before the deadline."""


# --------------------------------------------------------------------------- framing

def _wait(sock, deadline, drain, write: bool, what: str) -> None:
    """Block until ``sock`` is ready (or the deadline passes), servicing ``drain=(fd, callback)``
    meanwhile (the sandbox's stdout/stderr pipe, so a chatty submission never blocks on it)."""
    while True:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise FrameTimeout(what)
        rl = [] if write else [sock]
        if drain is not None and drain[0] is not None:
            rl.append(drain[0])
        r, w, _ = select.select(rl, [sock] if write else [], [], left)
        if drain is not None and drain[0] is not None and drain[0] in r:
            drain[1]()
        if (write and w) or (not write and sock in r):
            return
        if not r and not w:
            raise FrameTimeout(what)


def _sendall(sock: socket.socket, data: bytes, deadline: float | None, drain=None) -> None:
    view = memoryview(data)
    while view:
        if deadline is not None or drain is not None:
            _wait(sock, deadline, drain, True, "timed out sending to the sandbox")
        try:
            n = sock.send(view)
        except BlockingIOError:
            continue
        except OSError as exc:  # EPIPE, ECONNRESET, ENOTCONN...: the other side shut its end
            raise PeerClosed(str(exc)) from None
        view = view[n:]


def send_frame(sock: socket.socket, header: dict, blob: bytes = b"", deadline: float | None = None, drain=None) -> None:
    head = json.dumps(header, allow_nan=True, separators=(",", ":")).encode()
    _sendall(sock, HEADER.pack(len(head), len(blob)) + head, deadline, drain)
    if blob:
        _sendall(sock, blob, deadline, drain)


def _recv_exact(sock: socket.socket, n: int, deadline: float | None, drain=None) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        if deadline is not None or drain is not None:
            _wait(sock, deadline, drain, False, "no answer from the sandbox in time")
        try:
            chunk = sock.recv(min(n - len(buf), 1 << 20))
        except BlockingIOError:
            continue
        except OSError:  # ECONNRESET and the like: the other side is gone
            chunk = b""
        if not chunk:
            raise PeerClosed("the sandbox closed the connection")
        buf += chunk
    return bytes(buf)


class FrameTooLarge(ProtocolError):
    """A frame over the size limits (refused before any of it is read)."""


def recv_frame(sock: socket.socket, deadline: float | None = None, max_bytes: int = 256 * 1024 * 1024,
               drain=None, max_header: int | None = None) -> tuple[dict, bytes]:
    """Read one frame. The header is at most ``max_header`` bytes (default ``MAX_HEADER``, or what
    ``header_limit`` set), header and blob together at most ``max_bytes``; sizes are checked before
    anything is read, and the deadline is checked again after the header is parsed."""
    limit = _header_limit.get() if max_header is None else int(max_header)
    hlen, blen = HEADER.unpack(_recv_exact(sock, HEADER.size, deadline, drain))
    if hlen > min(limit, max_bytes):
        raise FrameTooLarge(f"frame too large (a header of {hlen} bytes, limit {min(limit, max_bytes)})")
    if blen > max_bytes or hlen + blen > max_bytes:
        raise FrameTooLarge(f"frame too large ({hlen + blen} bytes, limit {max_bytes})")
    head = _recv_exact(sock, hlen, deadline, drain)
    blob = _recv_exact(sock, blen, deadline, drain) if blen else b""
    try:
        header = json.loads(head.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError, MemoryError) as exc:
        raise ProtocolError(f"malformed frame header: {str(exc)[:200]}") from None
    if not isinstance(header, dict):
        raise ProtocolError("malformed frame header: not an object")
    check_deadline(deadline)
    return header, blob


def check_deadline(deadline: float | None, what: str = "no answer from the sandbox in time") -> None:
    """Raise FrameTimeout if ``deadline`` (time.monotonic()) has passed."""
    if deadline is not None and time.monotonic() > deadline:
        raise FrameTimeout(what)


# --------------------------------------------------------------------------- values

class EncodeError(Exception):
    pass


def _np():
    import numpy

    return numpy


def _torch():
    import torch

    return torch


def encode(value, *, on_unknown=None, depth: int = 0, _tensors: dict | None = None):
    """Encode ``value`` into (json-able object, {name: tensor}).

    ``on_unknown(obj) -> dict`` handles objects that are not plain data (the sandbox turns them
    into handles; the trusted side encodes its Handle objects); without it they are an error.
    """
    top = _tensors is None
    tensors: dict = {} if top else _tensors
    obj = _encode(value, on_unknown, depth, tensors)
    return (obj, tensors) if top else obj


def _encode(value, on_unknown, depth, tensors):
    if depth > 64:
        raise EncodeError("value nested too deeply (more than 64 levels)")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    torch = _torch()
    if isinstance(value, torch.Tensor):
        name = f"t{len(tensors)}"
        t = value.detach()
        if type(t) is not torch.Tensor:
            t = t.as_subclass(torch.Tensor)
        if t.is_complex():
            raise EncodeError("complex tensors cannot be sent")
        tensors[name] = t.to("cpu").contiguous().clone()
        return {"$t": name}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$b": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, tuple):  # torch.Size included
        return {"$tuple": [_encode(v, on_unknown, depth + 1, tensors) for v in value]}
    if isinstance(value, list):
        return [_encode(v, on_unknown, depth + 1, tensors) for v in value]
    if isinstance(value, dict):
        return {"$dict": [[_encode(k, on_unknown, depth + 1, tensors), _encode(v, on_unknown, depth + 1, tensors)]
                          for k, v in value.items()]}
    if isinstance(value, torch.dtype):
        return {"$dtype": str(value).replace("torch.", "")}
    np = _np()
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise EncodeError(f"numpy arrays of dtype {value.dtype} cannot be sent")
        name = f"t{len(tensors)}"
        tensors[name] = torch.from_numpy(np.ascontiguousarray(value)).clone()
        return {"$nd": name}
    if isinstance(value, np.generic):
        return _encode(value.item(), on_unknown, depth, tensors)
    if on_unknown is not None:
        return on_unknown(value)
    raise EncodeError(f"values of type {type(value).__name__} cannot be sent")


def pack_tensors(tensors: dict) -> bytes:
    if not tensors:
        return b""
    from safetensors.torch import save

    return save(tensors)


def check_tensor_blob(blob: bytes) -> int:
    """Validate a safetensors blob's own header before safetensors parses it: its size, at most
    MAX_TENSORS entries of at most MAX_DIMS dimensions, offsets inside the blob. Returns the count."""
    if len(blob) < 8:
        raise ProtocolError("malformed tensor data: too short")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > min(MAX_TENSOR_HEADER, len(blob) - 8):
        raise ProtocolError(f"malformed tensor data: header of {n} bytes (limit {MAX_TENSOR_HEADER})")
    try:
        meta = json.loads(bytes(blob[8:8 + n]).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ProtocolError(f"malformed tensor data: {str(exc)[:200]}") from None
    if not isinstance(meta, dict):
        raise ProtocolError("malformed tensor data: header is not an object")
    count = 0
    data_len = len(blob) - 8 - n
    for name, info in meta.items():
        if name == "__metadata__":
            continue
        count += 1
        if count > MAX_TENSORS:
            raise ProtocolError(f"too many tensors in one reply (more than {MAX_TENSORS})")
        if not isinstance(info, dict):
            raise ProtocolError("malformed tensor data: bad entry")
        shape, offsets = info.get("shape"), info.get("data_offsets")
        if (not isinstance(shape, list) or len(shape) > MAX_DIMS
                or not all(type(d) is int and 0 <= d <= data_len * 8 + 1 for d in shape)):
            raise ProtocolError(f"malformed tensor data: bad shape for {str(name)[:50]!r}")
        if (not isinstance(offsets, list) or len(offsets) != 2 or not all(type(o) is int for o in offsets)
                or not 0 <= offsets[0] <= offsets[1] <= data_len):
            raise ProtocolError(f"malformed tensor data: bad offsets for {str(name)[:50]!r}")
    return count


def unpack_tensors(blob: bytes) -> dict:
    if not blob:
        return {}
    check_tensor_blob(blob)
    from safetensors.torch import load

    try:
        return load(blob)
    except Exception as exc:  # safetensors raises its own error types for malformed data
        raise ProtocolError(f"malformed tensor data: {str(exc)[:200]}") from None


class _Budget:
    __slots__ = ("left",)

    def __init__(self, n: int):
        self.left = n


def _key_ok(k) -> bool:
    """Dict keys a reply may use: strings (hashed with per-process random keys), and None, bools and
    ints below 2**53 (they hash to themselves, so no two collide): nothing a submission can choose
    to make every insertion hit the same slot."""
    if k is None or isinstance(k, (str, bool)):
        return True
    return type(k) is int and -MAX_INT_KEY <= k <= MAX_INT_KEY


def decode(obj, tensors: dict, *, on_handle=None, depth: int = 0, max_nodes: int = MAX_NODES):
    """Rebuild a value from its tagged JSON form; raises ProtocolError on anything unexpected.

    At most ``max_nodes`` JSON nodes are visited and nesting is at most 66 levels, so the work is
    bounded by the (capped) header size whatever the sandbox sends."""
    return _decode(obj, tensors, on_handle, depth, _Budget(max_nodes))


def _decode(obj, tensors, on_handle, depth, budget):
    if depth > 66:
        raise ProtocolError("value nested too deeply")
    budget.left -= 1
    if budget.left < 0:
        raise ProtocolError("value too large (too many items)")
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, list):
        return [_decode(v, tensors, on_handle, depth + 1, budget) for v in obj]
    if not isinstance(obj, dict) or len(obj) < 1:
        raise ProtocolError("malformed value")
    if "$t" in obj or "$nd" in obj:
        key = obj.get("$t", obj.get("$nd"))
        if not isinstance(key, str) or key not in tensors:
            raise ProtocolError("reference to a missing tensor")
        t = tensors[key]
        if "$nd" in obj:
            try:
                return t.numpy()
            except Exception:  # noqa: BLE001  e.g. a dtype numpy has not (bfloat16)
                raise ProtocolError("malformed numpy array") from None
        return t
    if "$tuple" in obj:
        items = obj["$tuple"]
        if not isinstance(items, list):
            raise ProtocolError("malformed tuple")
        return tuple(_decode(v, tensors, on_handle, depth + 1, budget) for v in items)
    if "$dict" in obj:
        pairs = obj["$dict"]
        if not isinstance(pairs, list):
            raise ProtocolError("malformed dict")
        out = {}
        for pair in pairs:
            if not isinstance(pair, list) or len(pair) != 2:
                raise ProtocolError("malformed dict item")
            k = _decode(pair[0], tensors, on_handle, depth + 1, budget)
            if not _key_ok(k):
                raise ProtocolError("a dict key that is not a string or a small integer")
            out[k] = _decode(pair[1], tensors, on_handle, depth + 1, budget)
        return out
    if "$b" in obj:
        if not isinstance(obj["$b"], str):
            raise ProtocolError("malformed bytes")
        try:
            return base64.b64decode(obj["$b"], validate=True)
        except Exception:
            raise ProtocolError("malformed bytes") from None
    if "$dtype" in obj:
        torch = _torch()
        name = obj["$dtype"]
        dt = getattr(torch, name, None) if isinstance(name, str) and name.isidentifier() else None
        if not isinstance(dt, torch.dtype):
            raise ProtocolError("unknown dtype")
        return dt
    if "$h" in obj:
        if on_handle is None:
            raise ProtocolError("unexpected handle")
        hid, tname = obj.get("$h"), obj.get("type", "object")
        if type(hid) is not int or not isinstance(tname, str):
            raise ProtocolError("malformed handle")
        return on_handle(hid, tname[:200])
    raise ProtocolError("malformed value (unknown tag)")


def message(obj: dict, blob_tensors: dict | None = None) -> tuple[dict, bytes]:
    """Helper: (header, blob) for a header whose values were encoded with a shared tensor dict."""
    return obj, pack_tensors(blob_tensors or {})


def close_fds_except(keep: set[int]) -> None:
    try:
        fds = [int(x) for x in os.listdir("/proc/self/fd")]
    except OSError:
        fds = list(range(3, 1024))
    for fd in fds:
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass
