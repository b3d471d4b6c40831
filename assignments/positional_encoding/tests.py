"""Trusted driver of the positional_encoding pack.

Handout promise -> case(s) that exercise it:
  positional_encoding(max_len, d_model) -> (max_len, d_model) float32  pe_small, pe_large_hidden, pe_edge_hidden
  PE[pos, 2i] = sin, PE[pos, 2i+1] = cos, exponent 2i/d ............... pe_small (names swapped / i-over-d when matched)
  odd d_model: a lone last sine column; max_len = 1 ..................... pe_edge_hidden (30, 7), (1, 6), (200, 2)
  max_len = 1024 (float32 formula accepted, atol 2e-4) .................. pe_large_hidden
  EncoderBlock(d_model, num_heads, d_ff, dropout=0.0), eval() ........... every block case
  sub-module names attn.{q,k,v,out}_proj, norm1, norm2, ff1, ff2;
  nothing else in state_dict; parameter count ........................... block_parameters
  an extra entry costs the parameter test only, a renamed one every block test
                                                                          _student_block (strict=False + every
                                                                          reference weight must find its place)
  post-norm: LayerNorm(x + MHA(x)), LayerNorm(h + FFN(h)), ReLU FFN ..... block_basic, block_hidden
  heads of size d/H, softmax(QKᵀ/√d_h)V, merge, out_proj ................ block_basic, block_hidden (1, 2, 6, 8 heads)
  attention_mask None / (B, T) 0-1 / bool; padding keys get weight 0 .... block_basic (None), block_mask (long and bool),
                                                                          block_hidden, stack_hidden
  outputs at padding queries ignored; every sequence keeps a real token . _check_block compares real tokens only; _mask
  embeddings·√d + PE of positions 0..T-1, two stacked blocks ............ stack_hidden
  library encoder layers / MultiheadAttention not allowed; F.sdpa allowed  [forbid] in assignment.toml (engine);
                                                                          solutions/exp_log_sdpa.py uses F.sdpa
  (dropout is never active in grading: eval() and dropout=0.0, as the handout says)

Tolerances (see also the handout's table):
- positional_encoding: values lie in [-1, 1], compared with atol=PE_ATOL=2e-4, rtol=0 against a
  float64 reference rounded to float32. A float32 angle pos / 10000^(2i/d) (the usual student
  formula, via pow or via exp/log) is off by up to ~1.3e-4 at pos=2047 and ~6e-5 at pos=1023 (measured
  when the pack was written), so 2e-4 accepts every correct float32 formula up to max_len=1024, the
  largest case; sin/cos swapped or the i/d exponent are off by > 0.1 on every case. The encoding is
  computed on the CPU in the sandbox; on a GPU, float32 sin/cos are accurate to a few ulp (~1e-7),
  far below 2e-4, so the bound is device independent.
- EncoderBlock: LayerNorm outputs of order 1 in float32, atol=rtol=1e-4. Measured when the pack was
  written: a float32 block differs from the same block in float64 by at most 6e-7 (5 seeds, d=64,
  8 heads, d_ff=256), the second solution (SDPA, permute) from the reference by ~5e-7; pre-norm or
  an ignored mask is off by ~1. The modules and inputs live on the CPU inside the sandbox (queue
  "cpu"), so TF32 never applies; with TF32 matmuls on a GPU the error would be ~4e-4 (TF32
  emulation), which would need atol=2e-3 there.
Each block case loops over several seeds/configurations drawn from the case's generator.
"""
from __future__ import annotations

import math

import torch

from grader.authoring import Fail, case, compare

PE_ATOL = 2e-4
ATOL, RTOL = 1e-4, 1e-4
# Forbidden APIs (the library encoder layers and attention): the [forbid] table of assignment.toml,
# enforced by the engine for every case (grader/README.md).


# --------------------------------------------------------------------------- helpers (trusted)

def _pe_variant(max_len, d, kind):
    pos = torch.arange(max_len, dtype=torch.float64)[:, None]
    idx = torch.arange(0, d, 2, dtype=torch.float64)
    if kind == "i_over_d":
        idx = idx / 2
    angle = pos / torch.pow(10000.0, idx / d)
    pe = torch.zeros(max_len, d, dtype=torch.float64)
    first, second = (torch.cos, torch.sin) if kind == "swapped" else (torch.sin, torch.cos)
    pe[:, 0::2] = first(angle)
    pe[:, 1::2] = second(angle[:, : d // 2])
    return pe.float()


PE_DIAGNOSES = [
    ("swapped", "Sine and cosine are swapped: sin goes on the even columns (0, 2, 4, …), cos on the odd ones."),
    ("i_over_d", "Your frequencies use 10000^(i/d) with the pair number i; the exponent is 2i/d, where 2i is the "
                 "even column index."),
]


def _check_pe(ctx, max_len, d):
    got = ctx.sub.call("positional_encoding", max_len, d)
    expected = ctx.ref.positional_encoding(max_len, d)
    compare.is_tensor(got, f"positional_encoding({max_len}, {d})")
    compare.shape(got, tuple(expected.shape), f"positional_encoding({max_len}, {d})")
    if got.dtype != torch.float32:
        raise Fail(f"positional_encoding({max_len}, {d}) has dtype {got.dtype}, expected torch.float32 "
                   "(convert with .float() before returning)")
    compare.tensor_or_mistake(got, expected, [(text, lambda kind=kind: _pe_variant(max_len, d, kind))
                                              for kind, text in PE_DIAGNOSES],
                              name=f"positional_encoding({max_len}, {d})", atol=PE_ATOL, rtol=0)


def _ref_block(ctx, d, h, d_ff):
    block = ctx.ref.EncoderBlock(d, h, d_ff)
    with torch.no_grad():
        for name, p in block.named_parameters():
            if name.startswith("norm"):
                base = 1.0 if name.endswith("weight") else 0.0
                p.copy_(base + 0.2 * torch.randn(p.shape, generator=ctx.rng))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=ctx.rng))
            else:
                p.copy_(torch.randn(p.shape, generator=ctx.rng) / math.sqrt(p.shape[1]))
    return block.eval()


def _student_block(ctx, ref, d, h, d_ff):
    """The student's block with the reference weights loaded into the parameters it has (strict=False:
    an extra state_dict entry costs the structure test only; every reference weight must find its place)."""
    mod = ctx.sub.new("EncoderBlock", d, h, d_ff)
    mod.call("eval")
    res = mod.load_state_dict({k: v.clone() for k, v in ref.state_dict().items()}, strict=False)
    unexpected = res.get("unexpected", []) if isinstance(res, dict) else []
    if unexpected:
        raise Fail(f"the reference weights {sorted(str(u) for u in unexpected)} have no place in your block: it needs "
                   f"attn.q_proj, attn.k_proj, attn.v_proj, attn.out_proj, norm1, norm2, ff1, ff2 (the handout's table)")
    return mod


def _pre_norm(ref, x, mask):
    with torch.no_grad():
        x = x + ref.attn(ref.norm1(x), mask)
        return x + ref.ff2(torch.relu(ref.ff1(ref.norm2(x))))


INVERTED = ("Your output is what an inverted mask gives: 1 marks a real token that may be attended to, "
            "0 a padding token.")

BLOCK_DIAGNOSES = [
    (lambda ref, x, m: _pre_norm(ref, x, m),
     "This is the pre-norm block x + f(LayerNorm(x)); the handout asks for post-norm: LayerNorm(x + f(x))."),
    (lambda ref, x, m: ref(x, None) if m is not None else None,
     "Your output at the real tokens is what ignoring attention_mask gives: padding keys (mask 0) must get a "
     "score of -inf before the softmax (a mask over the queries instead of the keys also gives this)."),
    (lambda ref, x, m: ref(x, 1 - m.long()) if m is not None else None, INVERTED),
]


def _check_block(ctx, mod, ref, x, mask, name):
    """The block's output at the real tokens; a hint only when it equals a known mistake's output there."""
    got = mod(x, mask) if mask is not None else mod(x)
    with torch.no_grad():
        expected = ref(x, mask)
    keep = torch.ones(x.shape[:2], dtype=torch.bool) if mask is None else mask.bool()
    compare.is_tensor(got, name)
    compare.shape(got, tuple(expected.shape), name)
    sel = keep[..., None].expand_as(expected)

    def real(t):
        return torch.where(sel, t, torch.zeros((), dtype=t.dtype))

    def variant(fn):
        def compute():
            with torch.no_grad():
                alt = fn(ref, x, mask)
            return None if alt is None else real(alt)
        return compute

    compare.tensor_or_mistake(real(got), real(expected), [(text, variant(fn)) for fn, text in BLOCK_DIAGNOSES],
                              name=name + " (real tokens)", atol=ATOL, rtol=RTOL, equal_nan_mistakes=True)
    return got


def _mask(ctx, b, t):
    lengths = torch.randint(1, t + 1, (b,), generator=ctx.rng)
    lengths[0] = t
    return (torch.arange(t)[None, :] < lengths[:, None]).long()


# --------------------------------------------------------------------------- cases

@case(points=3, visible=True)
def pe_small(ctx):
    """positional_encoding(50, 16): shape, dtype and values"""
    _check_pe(ctx, 50, 16)


@case(points=2, visible=False)
def pe_large_hidden(ctx):
    """positional_encoding(1024, 512)"""
    _check_pe(ctx, 1024, 512)


@case(points=2, visible=False)
def pe_edge_hidden(ctx):
    """odd d_model and max_len = 1"""
    _check_pe(ctx, 30, 7)
    _check_pe(ctx, 1, 6)
    _check_pe(ctx, 200, 2)


@case(points=2, visible=True)
def block_parameters(ctx):
    """EncoderBlock: parameter names, shapes and count; nothing else in state_dict"""
    d, h, d_ff = 32, 4, 64
    mod = ctx.sub.new("EncoderBlock", d, h, d_ff)
    shapes = {str(k): tuple(v.shape) if torch.is_tensor(v) else None for k, v in mod.state_dict().items()}
    want = {k: tuple(v.shape) for k, v in ctx.ref.EncoderBlock(d, h, d_ff).state_dict().items()}
    if shapes != want:
        extra = sorted(set(shapes) - set(want))
        lacking = sorted(set(want) - set(shapes))
        wrong = sorted(k for k in set(want) & set(shapes) if want[k] != shapes[k])
        parts = ([f"unexpected entries {extra} (parameters or persistent buffers: state_dict must hold exactly the "
                  f"handout's table; a buffer can be registered with persistent=False)"] if extra else [])
        parts += [f"missing {lacking}"] if lacking else []
        parts += [f"wrong shape {wrong}"] if wrong else []
        raise Fail(f"EncoderBlock({d}, {h}, {d_ff}): state_dict differs from the handout's table: " + "; ".join(parts))
    n = mod.num_parameters()
    expected = 4 * d * d + 4 * d + 2 * d * d_ff + d_ff + d + 4 * d
    if n != expected:
        raise Fail(f"EncoderBlock({d}, {h}, {d_ff}) has {n} parameters, expected {expected}")


@case(points=4, visible=True)
def block_basic(ctx):
    """encoder block output, no mask"""
    d, h, d_ff = 32, 4, 64
    ref = _ref_block(ctx, d, h, d_ff)
    mod = _student_block(ctx, ref, d, h, d_ff)
    x = torch.randn(2, 7, d, generator=ctx.rng)
    _check_block(ctx, mod, ref, x, None, "EncoderBlock(32, 4, 64) output")


@case(points=3, visible=True)
def block_mask(ctx):
    """encoder block with a padding mask"""
    d, h, d_ff = 32, 4, 64
    ref = _ref_block(ctx, d, h, d_ff)
    mod = _student_block(ctx, ref, d, h, d_ff)
    x = torch.randn(3, 8, d, generator=ctx.rng)
    mask = torch.tensor([[1] * 8, [1] * 5 + [0] * 3, [1] * 2 + [0] * 6])
    _check_block(ctx, mod, ref, x, mask, "EncoderBlock output with attention_mask")
    _check_block(ctx, mod, ref, x, mask.bool(), "EncoderBlock output with a boolean attention_mask")


@case(points=2, visible=False)
def block_hidden(ctx):
    """other sizes: 1 and 8 heads, d_ff not 4·d, several seeds"""
    for d, h, d_ff, b, t in ((16, 1, 24, 2, 5), (64, 8, 256, 1, 11), (48, 6, 100, 3, 1), (32, 2, 32, 4, 9)):
        ref = _ref_block(ctx, d, h, d_ff)
        mod = _student_block(ctx, ref, d, h, d_ff)
        x = torch.randn(b, t, d, generator=ctx.rng)
        mask = _mask(ctx, b, t)
        _check_block(ctx, mod, ref, x, None, f"EncoderBlock({d}, {h}, {d_ff}) on {tuple(x.shape)}")
        _check_block(ctx, mod, ref, x, mask, f"EncoderBlock({d}, {h}, {d_ff}) with a mask")


@case(points=2, visible=False)
def stack_hidden(ctx):
    """positional encoding + two stacked blocks (embeddings · √d + PE)"""
    d, h, d_ff, b, t = 32, 4, 128, 2, 10
    emb = torch.randn(b, t, d, generator=ctx.rng) * 0.2
    pe = ctx.sub.call("positional_encoding", t, d)
    compare.is_tensor(pe, "positional_encoding(10, 32)")
    compare.shape(pe, (t, d), "positional_encoding(10, 32)")
    x = emb * math.sqrt(d) + pe.float()
    x_ref = emb * math.sqrt(d) + ctx.ref.positional_encoding(t, d)
    mask = _mask(ctx, b, t)
    for layer in range(2):
        ref = _ref_block(ctx, d, h, d_ff)
        mod = _student_block(ctx, ref, d, h, d_ff)
        got = mod(x, mask)
        with torch.no_grad():
            x_ref = ref(x_ref, mask)
        compare.is_tensor(got, f"block {layer + 1} output")
        sel = mask.bool()[..., None].expand_as(x_ref)
        compare.tensor(torch.where(sel, got, 0.0), torch.where(sel, x_ref, 0.0),
                       name=f"output of block {layer + 1} of the stack (real tokens)", atol=ATOL, rtol=RTOL)
        x = got
