"""Comparison helpers for drivers. Each raises ``grader.authoring.driver.Fail`` with a student-facing message.

All checks run on decoded data in the trusted process: a submission's objects never reach here
(tensor subclasses arrive as plain tensors, other objects as handles), so ``__eq__`` lies are moot.
"""
from __future__ import annotations

import math

import torch

from grader.authoring.driver import Fail, Handle


def _what(x) -> str:
    if isinstance(x, Handle):
        return f"a {x.type_name} object"
    if isinstance(x, torch.Tensor):
        return f"a tensor of shape {tuple(x.shape)}"
    return f"a {type(x).__name__}"


def is_tensor(x, name: str = "output") -> torch.Tensor:
    try:
        import numpy as np

        if isinstance(x, np.ndarray):
            raise Fail(f"{name} must be a torch.Tensor, got a numpy array")
    except ImportError:
        pass
    if not isinstance(x, torch.Tensor):
        raise Fail(f"{name} must be a torch.Tensor, got {_what(x)}")
    return x


def unpack(x, n: int, name: str = "the return value") -> tuple:
    if not isinstance(x, (tuple, list)) or len(x) != n:
        got = f"a {type(x).__name__} of length {len(x)}" if isinstance(x, (tuple, list)) else _what(x)
        raise Fail(f"{name} must be a tuple of {n} items, got {got}")
    return tuple(x)


def shape(t, expected, name: str = "output") -> None:
    is_tensor(t, name)
    if tuple(t.shape) != tuple(expected):
        raise Fail(f"{name} has shape {tuple(t.shape)}, expected {tuple(expected)}")


def dtype(t, expected, name: str = "output") -> None:
    is_tensor(t, name)
    if t.dtype != expected:
        raise Fail(f"{name} has dtype {str(t.dtype).replace('torch.', '')}, expected {str(expected).replace('torch.', '')}")


def finite(t, name: str = "output") -> None:
    is_tensor(t, name)
    if t.is_floating_point():
        bad = ~torch.isfinite(t)
        if bool(bad.any()):
            idx = tuple(int(i) for i in bad.nonzero()[0])
            n_nan = int(torch.isnan(t).sum())
            n_inf = int(torch.isinf(t).sum())
            raise Fail(f"{name} contains {n_nan} NaN and {n_inf} infinite value(s) (first at index {idx}: {t[idx].item()})")


def tensor(actual, expected: torch.Tensor, name: str = "output", atol: float = 1e-5, rtol: float = 1e-4,
           check_dtype: bool = True, equal_nan: bool = False) -> None:
    """Type, shape, dtype, finiteness, then allclose; the message names the worst element."""
    is_tensor(actual, name)
    shape(actual, expected.shape, name)
    if check_dtype:
        dtype(actual, expected.dtype, name)
    if expected.is_floating_point() and not equal_nan and bool(torch.isfinite(expected).all()):
        finite(actual, name)
    a = actual.detach().to(torch.float64) if expected.is_floating_point() else actual.detach()
    e = expected.detach().to(torch.float64) if expected.is_floating_point() else expected.detach()
    if a.numel() == 0:
        return
    if not expected.is_floating_point():
        exact(actual, expected, name)
        return
    if torch.allclose(a, e, atol=atol, rtol=rtol, equal_nan=equal_nan):
        return
    diff = (a - e).abs()
    diff = torch.where(torch.isnan(diff), torch.full_like(diff, math.inf), diff)
    excess = diff - (atol + rtol * e.abs())
    flat = int(torch.argmax(excess.reshape(-1)))
    idx = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), a.shape))
    n_bad = int((excess > 0).sum())
    raise Fail(
        f"{name} differs from the expected values at {n_bad} of {a.numel()} positions; "
        f"max abs error {float(diff.max()):.3g}, e.g. at index {idx}: got {float(a[idx]):.6g}, expected {float(e[idx]):.6g} "
        f"(tolerance atol={atol:g}, rtol={rtol:g})")


def exact(actual, expected, name: str = "output") -> None:
    """Exact equality for token ids, integer tensors, lists, numbers and strings."""
    if isinstance(expected, torch.Tensor):
        is_tensor(actual, name)
        shape(actual, expected.shape, name)
        if actual.is_floating_point() != expected.is_floating_point():
            raise Fail(f"{name} has dtype {str(actual.dtype).replace('torch.', '')}, expected {str(expected.dtype).replace('torch.', '')}")
        neq = actual != expected
        if bool(neq.any()):
            idx = tuple(int(i) for i in neq.nonzero()[0])
            raise Fail(f"{name} differs at index {idx}: got {actual[idx].item()}, expected {expected[idx].item()} "
                       f"({int(neq.sum())} of {neq.numel()} positions differ)")
        return
    if isinstance(expected, (list, tuple)):
        if not isinstance(actual, (list, tuple)):
            raise Fail(f"{name} must be a list, got {_what(actual)}")
        for i, (a, e) in enumerate(zip(actual, expected)):
            if type(a) is not type(e) and not (isinstance(a, (int, float)) and isinstance(e, (int, float))
                                               and not isinstance(a, bool)):
                raise Fail(f"{name}[{i}] is {a!r}, expected {e!r}")
            if isinstance(e, (list, tuple, torch.Tensor)):
                exact(a, e, f"{name}[{i}]")
            elif a != e:
                raise Fail(f"{name} differs at position {i}: got {a!r}, expected {e!r}")
        if len(actual) != len(expected):
            raise Fail(f"{name} has {len(actual)} items, expected {len(expected)}")
        return
    if type(actual) is not type(expected) and not (isinstance(actual, (int, float)) and isinstance(expected, (int, float))
                                                   and not isinstance(actual, bool)):
        raise Fail(f"{name} must be a {type(expected).__name__}, got {_what(actual)}")
    if actual != expected:
        raise Fail(f"{name} is {actual!r}, expected {expected!r}")


def close_number(x, expected: float, name: str = "value", atol: float = 0.0, rtol: float = 1e-6) -> None:
    if isinstance(x, torch.Tensor) and x.numel() == 1:
        x = x.item()
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise Fail(f"{name} must be a number, got {_what(x)}")
    if not math.isfinite(x) or abs(x - expected) > atol + rtol * abs(expected):
        raise Fail(f"{name} is {x:.6g}, expected {expected:.6g} (tolerance atol={atol:g}, rtol={rtol:g})")


def sums_to_one(p, dim: int = -1, atol: float = 1e-5, name: str = "probabilities") -> None:
    is_tensor(p, name)
    finite(p, name)
    s = p.to(torch.float64).sum(dim)
    bad = (s - 1).abs() > atol
    if bool(bad.any()):
        idx = tuple(int(i) for i in bad.nonzero()[0])
        raise Fail(f"{name} do not sum to 1 along dim {dim}: the sum at {idx} is {float(s[idx]):.6g}")
    if bool((p < 0).any()):
        raise Fail(f"{name} contain negative values")


def zeros_where(t, mask, name: str = "weights") -> None:
    """``t`` must be exactly 0 wherever ``mask`` (broadcastable) is True."""
    is_tensor(t, name)
    m = torch.broadcast_to(mask, t.shape)
    bad = m & (t != 0)
    if bool(bad.any()):
        idx = tuple(int(i) for i in bad.nonzero()[0])
        raise Fail(f"{name} must be exactly 0 at masked positions, but {int(bad.sum())} are not "
                   f"(e.g. index {idx}: {float(t[idx]):.3g})")


def distribution(p, q, name: str = "distribution", tv: float = 1e-4, dim: int = -1) -> None:
    """Compare probability distributions by total-variation distance (per row along ``dim``)."""
    is_tensor(p, name)
    shape(p, q.shape, name)
    finite(p, name)
    d = 0.5 * (p.to(torch.float64) - q.to(torch.float64)).abs().sum(dim)
    worst = float(d.max()) if d.numel() else 0.0
    if worst > tv:
        idx = tuple(int(i) for i in (d == d.max()).nonzero()[0]) if d.dim() else ()
        raise Fail(f"{name} differs from the expected distribution: total-variation distance {worst:.3g} "
                   f"(at {idx}; allowed {tv:g})")


def _close(a, b, atol: float, rtol: float, equal_nan: bool = False) -> bool:
    if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)) or a.shape != b.shape:
        return False
    if not (a.is_floating_point() and b.is_floating_point()):
        return bool(torch.equal(a, b))
    a, b = a.detach().to(torch.float64), b.detach().to(torch.float64)
    if equal_nan:  # NaN exactly where the other has NaN, everything else finite and close
        if not bool(torch.equal(torch.isnan(a), torch.isnan(b))):
            return False
        keep = ~torch.isnan(a)
        a, b = a[keep], b[keep]
    if not (bool(torch.isfinite(a).all()) and bool(torch.isfinite(b).all())):
        return False
    return bool(torch.allclose(a, b, atol=atol, rtol=rtol))


def which_mistake(actual, expected, mistakes, atol: float = 1e-5, rtol: float = 1e-4, equal_nan: bool = False):
    """The first known mistake whose output ``actual`` matches, or None.

    ``mistakes``: ``{key: candidate}`` or ``[(key, candidate)]`` where a candidate is what the
    reference computes on the *same inputs* with that mistake applied (a tensor, or a callable returning
    one, computed only when needed). A mistake is named only when it is distinguishable here: the
    candidate must differ from ``expected`` beyond the tolerance (scaling by sqrt(d_v) is not a mistake
    when d_v == d_k) and ``actual`` must match the candidate within it. A candidate that cannot be
    computed (raises) is skipped. So a hint built on this is true: the student's output is what that
    mistake gives. ``equal_nan``: a candidate with NaN (an inverted mask hiding every key of a row)
    matches an output with NaN at exactly the same places and close values elsewhere."""
    if not isinstance(actual, torch.Tensor) or not isinstance(expected, torch.Tensor):
        return None
    items = mistakes.items() if isinstance(mistakes, dict) else mistakes
    for key, cand in items:
        try:
            c = cand() if callable(cand) else cand
        except Exception:
            continue
        if not isinstance(c, torch.Tensor) or _close(c, expected, atol, rtol, equal_nan):
            continue
        if _close(actual, c, atol, rtol, equal_nan):
            return key
    return None


def tensor_or_mistake(actual, expected: torch.Tensor, mistakes, name: str = "output", atol: float = 1e-5,
                      rtol: float = 1e-4, check_dtype: bool = True, messages: dict | None = None,
                      otherwise: str | None = None, equal_nan_mistakes: bool = False) -> None:
    """``tensor(...)``; when it fails, the hint names the known mistake the output matches (see
    ``which_mistake``; ``messages[key]`` is its text, else the candidate's key is the text), and
    otherwise ``otherwise`` (None: the case's static hint, if any; a case using this should have
    none, so that a hint is only ever given when it is true). The message itself always says what
    differs and where (shape, dtype, largest error and its index)."""
    try:
        tensor(actual, expected, name=name, atol=atol, rtol=rtol, check_dtype=check_dtype)
    except Fail as exc:
        key = which_mistake(actual, expected, mistakes, atol=atol, rtol=rtol, equal_nan=equal_nan_mistakes)
        hint = (messages or {}).get(key, key) if key is not None else otherwise
        raise Fail(exc.message, hint=hint) from None
