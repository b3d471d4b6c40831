"""Trusted driver for the attention pack (see grader/README.md for the API).

Every case builds seeded inputs, asks the submission for (output, weights), computes the
reference itself (in float64, cast to the input dtype) and compares. When the weights are wrong,
``_diagnose`` names a classic mistake only when the weights equal what that mistake gives on the
same inputs (grader.authoring.compare.which_mistake); otherwise the message says what differs and where.

Handout promise -> case(s) that exercise it:
  signature (q, k, v, mask=None) -> (output, weights) tuple .......... shapes_2d, every _check
  mask optional (called without it) .................................. values_2d, rows_sum_to_one
  output (..., T_q, d_v), weights (..., T_q, T_k) ..................... shapes_2d, _check (shape first)
  any number of leading dims (none, batch, batch+heads) ................ values_2d, large_logits, batch_and_heads
  T_q != T_k, d_v != d_k .............................................. batch_and_heads, rows_sum_to_one, mixed_masks
  scale by sqrt(d_k), d_k = q.shape[-1] (not d_k, not d_v) ............. values_2d, batch_and_heads (d_v != d_k)
  bool mask broadcastable, True = may attend ........................... padding_mask (B,1,1,T_k), causal_mask (T,T),
                                                                         float64_inputs (B,1,T_k), mixed_masks (full shape)
  masked weights exactly 0 ............................................ every _check with a mask (compare.zeros_where)
  softmax over the keys: rows are distributions summing to 1 ........... rows_sum_to_one, every weights comparison
  causal mask (decoder) ................................................ causal_mask, large_logits, mixed_masks
  finite and correct for large logits (float32 and float64) ............ large_logits
  dtype in = dtype out (float32, float64) .............................. shapes_2d, _check (dtype), float64_inputs
  fully masked rows not graded ......................................... mixed_masks keeps a key in every row
  d_k = 1 .............................................................. mixed_masks
  library kernels not allowed, __main__ self-check fine ................ [forbid] in assignment.toml (engine);
                                                                         tests/packs/test_attention.py
  (no promise about leaving the inputs unchanged: not graded)
"""
import math

import torch

from grader.authoring import Fail, case, compare

FN = "scaled_dot_product_attention"
TOL32 = dict(atol=1e-5, rtol=1e-4)


def _ref(ctx, q, k, v, mask=None):
    out, w = ctx.ref.scaled_dot_product_attention(q.double(), k.double(), v.double(), mask)
    return out.to(q.dtype), w.to(q.dtype)


def _randn(ctx, *shape, dtype=torch.float32, scale=1.0):
    return (torch.randn(*shape, generator=ctx.rng, dtype=torch.float64) * scale).to(dtype)


def _qkv(ctx, lead, tq, tk, dk, dv, dtype=torch.float32, scale=1.0):
    return (_randn(ctx, *lead, tq, dk, dtype=dtype, scale=scale), _randn(ctx, *lead, tk, dk, dtype=dtype, scale=scale),
            _randn(ctx, *lead, tk, dv, dtype=dtype))


def _padding_mask(ctx, batch, tk):
    """(batch, 1, 1, tk): True for real tokens; every sequence keeps at least one key."""
    lengths = torch.randint(1, tk + 1, (batch,), generator=ctx.rng)
    lengths[0] = tk - 2
    keep = torch.arange(tk)[None, :] < lengths[:, None]
    return keep[:, None, None, :]


def _causal(t):
    return torch.tril(torch.ones(t, t, dtype=torch.bool))


# ----------------------------------------------------------------------------- diagnosis

def _softmax(scores, dim=-1):
    return torch.softmax(scores, dim=dim)


def _variants(q, k, v, mask):
    """Weights produced by the classic mistakes on these inputs (float64), computed lazily."""
    q, k, v = q.double(), k.double(), v.double()
    d = q.shape[-1]
    raw = q @ k.transpose(-2, -1)

    def masked(scores, fill=float("-inf"), m=mask):
        return scores if m is None else scores.masked_fill(~m, fill)

    out = {
        "no_scaling": lambda: _softmax(masked(raw)),
        "scale_dk": lambda: _softmax(masked(raw / d)),
        "scale_dv": lambda: _softmax(masked(raw / math.sqrt(v.shape[-1]))),
        "wrong_dim": lambda: _softmax(masked(raw / math.sqrt(d)), dim=-2),
    }
    if mask is not None:
        after = lambda: _softmax(raw / math.sqrt(d)).masked_fill(~mask, 0.0)  # noqa: E731
        out.update({
            "mask_after": after,
            "mask_after_renorm": lambda: after() / after().sum(-1, keepdim=True),
            "fill_zero": lambda: _softmax(masked(raw / math.sqrt(d), 0.0)),
            "inverted": lambda: _softmax(masked(raw / math.sqrt(d), m=~mask)),
            "unmasked": lambda: _softmax(raw / math.sqrt(d)),
        })
    return out


MESSAGES = {
    "no_scaling": "Your weights equal softmax(QKᵀ) without scaling: divide the scores by sqrt(d_k) "
                  "(d_k = q.shape[-1]) before the softmax.",
    "scale_dk": "Your weights equal softmax(QKᵀ / d_k): the scores must be divided by sqrt(d_k), not by d_k.",
    "scale_dv": "Your weights equal softmax(QKᵀ / sqrt(d_v)) with d_v = v.shape[-1]: scale by sqrt(d_k), "
                "the size of the query/key vectors (q.shape[-1]); here d_v differs from d_k.",
    "wrong_dim": "Your weights were normalised over the wrong dimension: the softmax must run over the keys "
                 "(the last dimension, dim=-1), so that each query's row of weights sums to 1.",
    "mask_after": "Your weights look like the mask was applied after the softmax: apply the mask to the scores "
                  "before the softmax (fill masked scores with -inf), so each row still sums to 1.",
    "mask_after_renorm": "Your weights look like the mask was applied after the softmax and renormalised; that is "
                         "numerically fragile: fill masked scores with -inf before the softmax.",
    "fill_zero": "Masked scores were set to 0, which still gives them weight exp(0) > 0: fill masked scores with "
                 "-inf (e.g. scores.masked_fill(~mask, float('-inf'))) before the softmax.",
    "inverted": "You masked the positions where mask is True, but True means 'may attend': mask where it is False.",
    "unmasked": "Your weights ignore the mask: positions where mask is False must get weight exactly 0.",
}


def _diagnose(w, ref_w, q, k, v, mask):
    """The hint for wrong weights: the classic mistake they equal on these inputs, or None (then the
    message only says what differs and where). See grader.authoring.compare.which_mistake."""
    if not isinstance(w, torch.Tensor) or not w.is_floating_point():
        return None
    key = compare.which_mistake(w.double(), ref_w.double(), _variants(q, k, v, mask), atol=1e-4, rtol=1e-3)
    return MESSAGES.get(key)


def _check(ctx, q, k, v, mask=None, *, tol=TOL32, pass_mask=True):
    args = (q, k, v)
    got = ctx.sub.call(FN, *args, mask=mask) if pass_mask else ctx.sub.call(FN, *args)
    out, w = compare.unpack(got, 2, f"the return value of {FN}")
    ref_out, ref_w = _ref(ctx, q, k, v, mask)
    compare.is_tensor(out, "output (first return value)")
    compare.is_tensor(w, "weights (second return value)")
    compare.shape(w, ref_w.shape, "weights")
    compare.shape(out, ref_out.shape, "output")
    compare.dtype(w, ref_w.dtype, "weights")
    compare.dtype(out, ref_out.dtype, "output")
    if mask is not None:
        try:
            compare.zeros_where(w, ~mask, "weights")
        except Fail as exc:
            raise Fail(exc.message, hint=_diagnose(w, ref_w, q, k, v, mask)) from None
    try:
        compare.tensor(w, ref_w, "weights", **tol)
    except Fail as exc:
        raise Fail(exc.message, hint=_diagnose(w, ref_w, q, k, v, mask)) from None
    try:
        compare.tensor(out, ref_out, "output", **tol)
    except Fail as exc:
        raise Fail(exc.message, hint="The weights are right, so check the last step: output = weights @ v.") from None
    return out, w


# ----------------------------------------------------------------------------- visible cases

@case(points=1, visible=True)
def shapes_2d(ctx):
    """2-D inputs: returns (output, weights) with the right shapes and dtype"""
    q, k, v = _qkv(ctx, (), 5, 7, 8, 3)
    got = ctx.sub.call(FN, q, k, v)
    out, w = compare.unpack(got, 2, f"the return value of {FN}")
    compare.shape(out, (5, 3), "output (first return value)")
    compare.shape(w, (5, 7), "weights (second return value)")
    compare.dtype(out, torch.float32, "output")
    compare.dtype(w, torch.float32, "weights")


@case(points=1.5, visible=True)
def values_2d(ctx):
    """2-D inputs without a mask: output and weights match softmax(QKᵀ/√d_k)·V"""
    q, k, v = _qkv(ctx, (), 6, 6, 16, 4)
    _check(ctx, q, k, v, pass_mask=False)


@case(points=1.5, visible=True)
def batch_and_heads(ctx):
    """Leading batch and head dimensions (2, 3, ...), T_q ≠ T_k, d_v ≠ d_k"""
    q, k, v = _qkv(ctx, (2, 3), 4, 6, 8, 5)
    _check(ctx, q, k, v, None)


@case(points=1.5, visible=True)
def padding_mask(ctx):
    """Boolean padding mask of shape (batch, 1, 1, T_k), broadcast over heads and queries"""
    q, k, v = _qkv(ctx, (3, 2), 5, 7, 8, 4)
    _check(ctx, q, k, v, _padding_mask(ctx, 3, 7))


@case(points=1.5, visible=True)
def causal_mask(ctx):
    """Causal (decoder) mask: query i attends to keys 0..i only; masked weights exactly 0"""
    q, k, v = _qkv(ctx, (2, 2), 6, 6, 8, 8)
    _check(ctx, q, k, v, _causal(6))


# ----------------------------------------------------------------------------- hidden cases

@case(points=0.5, visible=False)
def rows_sum_to_one(ctx):
    """Each row of weights is a probability distribution"""
    q, k, v = _qkv(ctx, (4,), 9, 11, 12, 6)
    got = ctx.sub.call(FN, q, k, v)
    _, w = compare.unpack(got, 2, f"the return value of {FN}")
    compare.shape(w, (4, 9, 11), "weights")
    compare.sums_to_one(w, dim=-1, atol=1e-5, name="weights")


@case(points=1, visible=False,
      hint="This test uses scores in the hundreds and thousands (float32 and float64); the result must stay finite "
           "and correct there (if you wrote your own softmax: exp() of such scores overflows unless the row maximum "
           "is subtracted first, as torch.softmax does).")
def large_logits(ctx):
    """Large logits (scores in the hundreds and thousands) stay finite and correct"""
    q, k, v = _qkv(ctx, (2,), 5, 8, 16, 4, scale=10.0)
    _check(ctx, q, k, v, _causal(8)[:5], tol=dict(atol=1e-4, rtol=1e-3))
    q64, k64, v64 = _qkv(ctx, (2,), 5, 8, 16, 4, dtype=torch.float64, scale=40.0)
    _check(ctx, q64, k64, v64, None, tol=dict(atol=1e-9, rtol=1e-7))


@case(points=0.5, visible=False)
def float64_inputs(ctx):
    """float64 inputs give float64 results (to 1e-10)"""
    q, k, v = _qkv(ctx, (2,), 4, 5, 8, 3, dtype=torch.float64)
    _check(ctx, q, k, v, _padding_mask(ctx, 2, 5)[:, 0], tol=dict(atol=1e-10, rtol=1e-9))


@case(points=1, visible=False)
def mixed_masks(ctx):
    """Random shapes with a combined causal and padding mask, d_k = 1 and longer sequences"""
    q, k, v = _qkv(ctx, (2, 4), 12, 12, 1, 7)
    mask = _causal(12)[None, None] & _padding_mask(ctx, 2, 12)
    _check(ctx, q, k, v, mask)
    q, k, v = _qkv(ctx, (3,), 3, 17, 32, 2)
    mask = torch.rand(3, 3, 17, generator=ctx.rng) < 0.6
    mask[..., 0] = True  # every query keeps at least one key (fully masked rows are not graded)
    _check(ctx, q, k, v, mask)
