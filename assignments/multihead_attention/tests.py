"""Trusted driver of the multihead_attention pack.

Handout promise -> case(s) that exercise it:
  class MultiHeadAttention(d_model, num_heads, bias=True) ............ every case (ctx.sub.new)
  q_proj/k_proj/v_proj/out_proj nn.Linear, nothing else in state_dict  parameters (names the extra/missing keys)
  4·d² + 4·d parameters (4·d² with bias=False) ........................ parameters
  grader's weights loaded by name; an extra entry costs the
  structure test only, a missing projection fails every test ......... _student (strict=False + every reference
                                                                         weight must find its place), parameters
  split heads (B,T,H,dh)->(B,H,T,dh), merge back, out_proj ............ forward_basic, shapes_hidden (1 and 16 heads)
  scores / sqrt(d_head) ............................................... forward_basic, shapes_hidden (d_head != d_model)
  forward returns (out, present_kv); present_kv None without cache .... forward_basic
  causal: j <= i, diagonal included ................................... causal_basic, causal_hidden (t=1 too), no_bias_hidden
  past_kv appended on dim 2; present_kv = all keys/values (B,H,P+T,dh)  decode_steps (cache checked every step),
                                                                         prefill_chunks_hidden
  causal with cache: query i at P + i sees j <= P + i ................. decode_steps, prefill_chunks_hidden (chunks of 2)
  prefill then chunks ................................................. prefill_chunks_hidden
  no state kept between calls ......................................... interleaved_hidden
  out has the dtype/shape of x (B, T, d_model) ........................ compare.tensor in every output check
  bias=False .......................................................... parameters, no_bias_hidden
  library attention not allowed, __main__ fine ........................ [forbid] in assignment.toml (engine);
                                                                         tests/packs/test_multihead_attention.py
  (ValueError for d_model % num_heads != 0 is "good practice", not graded)

Every case builds the reference module from ctx.ref, gives it random weights drawn from the case's
seeded generator, loads exactly those weights into the student's module (load_state_dict) and
compares the student's outputs with the reference computed here, in the trusted process.

Tolerances. ATOL = 1e-5, RTOL = 1e-4 on float32 outputs of magnitude ~1 (weights with std
1/sqrt(d), biases std 0.1). Measured when the pack was written (5 seeds, d = 32 and 64, causal):
a float32 forward differs from the same module in float64 by at most 1.0e-6, and the second
solution (einsum, other reduction order) from the reference by ~6e-8, so the bound has 10x headroom
over float32 rounding; every mutant is off by more than 0.5. Device: the inputs and the module live
on the CPU in the sandbox whatever the queue (this pack is queue "cpu"), so TF32 never applies. If
the pack were moved to a GPU with TF32 matmuls enabled, the error grows to ~1.8e-3 (measured by
emulating TF32's 10-bit mantissa on every matmul/linear input), and ATOL would have to become 5e-3
(still far below the mutants' 0.5); PyTorch's default float32 matmul precision ("highest") does not
use TF32. Several configurations and seeds per case (the loops below) keep the bound honest.

Forbidden APIs (torch.nn.MultiheadAttention, F.scaled_dot_product_attention & co.): the [forbid] table
of assignment.toml, enforced by the engine for every case (source scan + stubs in the sandbox, see
grader/README.md); a submission that uses them scores 0.
"""
from __future__ import annotations

import math

import torch

from grader.authoring import Fail, case, compare

ATOL, RTOL = 1e-5, 1e-4
CLASS = "MultiHeadAttention"


# --------------------------------------------------------------------------- helpers (trusted)

def _weights(ctx, d, h, bias=True):
    """The reference module with seeded random weights (std 1/sqrt(d), biases std 0.1)."""
    ref = ctx.ref.MultiHeadAttention(d, h, bias=bias)
    with torch.no_grad():
        for name, p in ref.named_parameters():
            std = 0.1 if name.endswith("bias") else 1.0 / math.sqrt(d)
            p.copy_(torch.randn(p.shape, generator=ctx.rng) * std)
    return ref.eval()


def _student(ctx, ref, d, h, bias=True):
    """Instantiate the student's module and load the reference weights into the parameters it has.

    strict=False: an extra entry of the student's (a persistent mask buffer, as nanoGPT registers)
    costs the structure test (``parameters``) only; here every reference weight must find its place
    (a name the module lacks fails), and the behaviour is graded."""
    kwargs = {} if bias else {"bias": False}
    mod = ctx.sub.new(CLASS, d, h, **kwargs)
    sd = {k: v.clone() for k, v in ref.state_dict().items()}
    res = mod.load_state_dict(sd, strict=False)
    unexpected = res.get("unexpected", []) if isinstance(res, dict) else []
    if unexpected:
        raise Fail(f"the reference weights {sorted(str(u) for u in unexpected)} have no place in your module: "
                   f"it needs the attributes q_proj, k_proj, v_proj, out_proj (nn.Linear(d_model, d_model, bias=bias))")
    return mod


def _x(ctx, b, t, d):
    return torch.randn(b, t, d, generator=ctx.rng)


def _call(mod, x, **kw):
    res = mod(x, **kw)
    out, present = compare.unpack(res, 2, "the return value of forward (out, present_kv)")
    return out, present


def _functional(ref, x, causal=False, *, split="right", out_proj=True, mask_shift=0, scale="d_head", past=0,
                offset=True):
    """The reference computation with one known mistake switched on (for diagnosis only).

    ``past``: the first ``past`` tokens of x are the cache, the output is for the rest; ``offset=False``:
    the causal mask ignores the cached length (query i sees keys j <= i instead of j <= P + i)."""
    b, t, d = x.shape
    h = ref.num_heads
    dh = d // h

    def heads(z):
        if split == "right":
            return z.view(b, t, h, dh).transpose(1, 2)
        return z.view(b, h, t, dh)

    with torch.no_grad():
        q, k, v = heads(ref.q_proj(x)), heads(ref.k_proj(x)), heads(ref.v_proj(x))
        q = q[:, :, past:]
        n = t - past
        div = {"d_head": math.sqrt(dh), "d_model": math.sqrt(d), "none": 1.0}[scale]
        s = q @ k.transpose(-2, -1) / div
        if causal:
            allowed = torch.ones(n, t, dtype=torch.bool).tril(diagonal=(past if offset else 0) + mask_shift)
            s = s.masked_fill(~allowed, float("-inf"))
        y = (torch.softmax(s, -1) @ v).transpose(1, 2).reshape(b, n, d)
        return ref.out_proj(y) if out_proj else y


DIAGNOSES = [
    (dict(split="wrong"), "Your heads look split along the wrong axis: reshape (B, T, d_model) to "
     "(B, T, H, d_head) and then transpose to (B, H, T, d_head); a direct view to (B, H, T, d_head) mixes time steps."),
    (dict(out_proj=False), "Your output equals the merged heads *before* out_proj: apply the output projection."),
    (dict(scale="d_model"), "Your output equals what scaling the scores by 1/sqrt(d_model) gives: scale by "
     "1/sqrt(d_head), the size of one head (d_model // num_heads)."),
    (dict(scale="none"), "Your output equals what unscaled scores give: divide the scores by sqrt(d_head)."),
    (dict(mask_shift=1), "Your causal mask lets each position see the next one: position i may attend to j <= i only "
     "(keep the diagonal, hide everything above it)."),
]
CACHE_DIAGNOSES = [
    (dict(offset=False), "Your output is what a causal mask without the cache offset gives: query i of this call "
     "sits at position P + i (P = the cached length) and may see keys j <= P + i, not only j <= i."),
    (dict(causal=False), "Your output is what no causal mask at all gives when a cache is passed: with P cached "
     "tokens, query i of this call may see keys j <= P + i only."),
] + [d for d in DIAGNOSES if "mask_shift" not in d[0]]


def _mistakes(ref, x, causal, diagnoses, past=0):
    out = []
    for kw, text in diagnoses:
        if "mask_shift" in kw and not causal:
            continue
        kw = dict(kw)
        c = kw.pop("causal", causal)
        out.append((text, lambda kw=kw, c=c: _functional(ref, x, c, past=past, **kw)))
    return out


def _check(actual, ref, x, name, causal=False):
    """The output of a full pass; a hint only when it equals a known mistake's output on these inputs."""
    with torch.no_grad():
        expected = ref(x, causal=causal)[0]
    compare.tensor_or_mistake(actual, expected, _mistakes(ref, x, causal, DIAGNOSES), name=name, atol=ATOL, rtol=RTOL)


def _check_step(actual, ref, x, past, name):
    """The output for x[:, past:] decoded with x[:, :past] in the cache (causal)."""
    with torch.no_grad():
        expected = ref(x, causal=True)[0][:, past:]
    compare.tensor_or_mistake(actual, expected, _mistakes(ref, x, True, CACHE_DIAGNOSES, past=past),
                              name=name, atol=ATOL, rtol=RTOL)


def _decode(mod, x, chunks, name):
    """Feed x through mod in consecutive chunks (sizes in `chunks`) with the cache; return outputs, cache."""
    past, outs, start = None, [], 0
    for n in chunks:
        out, past = _call(mod, x[:, start:start + n], causal=True, past_kv=past, use_cache=True)
        start += n
        k, v = compare.unpack(past, 2, f"present_kv after {start} tokens ({name})")
        compare.is_tensor(k, f"present_kv[0] after {start} tokens")
        compare.is_tensor(v, f"present_kv[1] after {start} tokens")
        outs.append(out)
    return outs, past


def _check_cache(past, ref, x, what, before=None):
    """present_kv after x has been fed; ``before``: how many of those tokens were already cached
    before the last call (to recognise a cache grown along another axis)."""
    with torch.no_grad():
        _, (k, v) = ref(x, causal=True, use_cache=True)
    for got, exp, label in ((past[0], k, "keys"), (past[1], v, "values")):
        if torch.is_tensor(got) and got.shape != exp.shape:
            msg = (f"cached {label} after {x.shape[1]} tokens ({what}) have shape {tuple(got.shape)}, expected "
                   f"{tuple(exp.shape)} = (batch, heads, tokens so far, d_head)")
            hint = None
            if before:
                old, new = exp[:, :, :before], exp[:, :, before:]
                for dim in (0, 1, 3):
                    if got.shape == torch.cat([old, new], dim=dim).shape:
                        hint = (f"Your cache grew along dim {dim}: append the new keys/values along the time "
                                f"axis (dim=2) of (batch, heads, time, d_head).")
            raise Fail(msg, hint=hint)
        compare.tensor(got, exp, name=f"cached {label} ({what})", atol=ATOL, rtol=RTOL)


# --------------------------------------------------------------------------- visible cases

@case(points=2, visible=True)
def parameters(ctx):
    """parameter names, shapes and count (4·d² + 4·d; 4·d² without bias); nothing else in state_dict"""
    for d, h, bias in ((64, 8, True), (48, 4, False)):
        mod = ctx.sub.new(CLASS, d, h, **({} if bias else {"bias": False}))
        shapes = {str(k): tuple(v.shape) if torch.is_tensor(v) else None for k, v in mod.state_dict().items()}
        want = {k: tuple(v.shape) for k, v in ctx.ref.MultiHeadAttention(d, h, bias=bias).state_dict().items()}
        if shapes != want:
            extra = sorted(set(shapes) - set(want))
            lacking = sorted(set(want) - set(shapes))
            wrong = sorted(k for k in set(want) & set(shapes) if want[k] != shapes[k])
            parts = ([f"unexpected entries {extra} (parameters or persistent buffers: state_dict must hold "
                      f"exactly the four projections' weights and biases; a mask buffer can be registered with "
                      f"persistent=False or built in forward)"] if extra else [])
            parts += [f"missing {lacking}"] if lacking else []
            parts += [f"wrong shape {wrong}"] if wrong else []
            raise Fail(f"MultiHeadAttention({d}, {h}, bias={bias}): state_dict differs from the handout: "
                       + "; ".join(parts))
        n = mod.num_parameters()
        expected = 4 * d * d + (4 * d if bias else 0)
        if n != expected:
            raise Fail(f"MultiHeadAttention({d}, {h}, bias={bias}) has {n} parameters, expected {expected}")


@case(points=3, visible=True)
def forward_basic(ctx):
    """full pass without mask matches the reference; present_kv is None"""
    d, h = 32, 4
    ref = _weights(ctx, d, h)
    mod = _student(ctx, ref, d, h)
    x = _x(ctx, 2, 5, d)
    out, present = _call(mod, x)
    if present is not None:
        raise Fail("forward(x) with use_cache=False must return (out, None); the second item is not None")
    _check(out, ref, x, "output of forward(x)")


@case(points=2, visible=True)
def causal_basic(ctx):
    """causal full pass matches the reference"""
    d, h = 32, 4
    ref = _weights(ctx, d, h)
    mod = _student(ctx, ref, d, h)
    x = _x(ctx, 2, 6, d)
    out, _ = _call(mod, x, causal=True)
    _check(out, ref, x, "output of forward(x, causal=True)", causal=True)


@case(points=3, visible=True)
def decode_steps(ctx):
    """token-by-token decoding with the cache matches the causal full pass"""
    d, h, t = 32, 4, 6
    ref = _weights(ctx, d, h)
    mod = _student(ctx, ref, d, h)
    x = _x(ctx, 2, t, d)
    past = None
    for i in range(t):
        out, past = _call(mod, x[:, i:i + 1], causal=True, past_kv=past, use_cache=True)
        if past is None:
            raise Fail(f"step {i + 1}: forward(..., use_cache=True) returned present_kv = None")
        past = compare.unpack(past, 2, f"present_kv after step {i + 1}")
        _check_cache(past, ref, x[:, :i + 1], f"step {i + 1}", before=i)
        _check_step(out, ref, x[:, :i + 1], i, f"output of decoding step {i + 1}")


# --------------------------------------------------------------------------- hidden cases

@case(points=2, visible=False)
def shapes_hidden(ctx):
    """other shapes: one head, sixteen heads, a single token, batch of three"""
    for d, h, b, t in ((48, 6, 3, 7), (16, 1, 2, 5), (64, 16, 1, 9), (24, 3, 4, 1)):
        ref = _weights(ctx, d, h)
        mod = _student(ctx, ref, d, h)
        x = _x(ctx, b, t, d)
        out, _ = _call(mod, x)
        _check(out, ref, x, f"output for d_model={d}, heads={h}, x of shape {tuple(x.shape)}")


@case(points=1, visible=False)
def no_bias_hidden(ctx):
    """bias=False"""
    d, h = 40, 5
    ref = _weights(ctx, d, h, bias=False)
    mod = _student(ctx, ref, d, h, bias=False)
    x = _x(ctx, 2, 4, d)
    out, _ = _call(mod, x)
    _check(out, ref, x, "output with bias=False")
    out, _ = _call(mod, x, causal=True)
    _check(out, ref, x, "causal output with bias=False", causal=True)


@case(points=2, visible=False)
def causal_hidden(ctx):
    """causal pass on longer sequences, several seeds"""
    for d, h, b, t in ((40, 4, 2, 12), (64, 8, 1, 20), (16, 2, 3, 1)):
        ref = _weights(ctx, d, h)
        mod = _student(ctx, ref, d, h)
        x = _x(ctx, b, t, d)
        out, _ = _call(mod, x, causal=True)
        _check(out, ref, x, f"causal output for x of shape {tuple(x.shape)}", causal=True)


@case(points=3, visible=False,
      hint="This test runs a prompt with causal=True and use_cache=True, then continues in chunks of 1 and 2 tokens "
           "with past_kv (query i of a call sits at position P + i, P = the cached length).")
def prefill_chunks_hidden(ctx):
    """prefill a prompt, then decode in chunks of 1 and 2 tokens"""
    for d, h, b, chunks in ((40, 5, 2, (4, 1, 2, 1)), (48, 8, 1, (3, 2, 2, 1, 1))):
        ref = _weights(ctx, d, h)
        mod = _student(ctx, ref, d, h)
        t = sum(chunks)
        x = _x(ctx, b, t, d)
        with torch.no_grad():
            full = ref(x, causal=True)[0]
        outs, past = _decode(mod, x, chunks, f"chunks {list(chunks)}")
        _check_cache(past, ref, x, f"after chunks {list(chunks)}")
        compare.tensor(torch.cat(outs, dim=1) if all(torch.is_tensor(o) for o in outs) else outs[0], full,
                       name=f"outputs decoded in chunks {list(chunks)}", atol=ATOL, rtol=RTOL)


@case(points=2, visible=False,
      hint="This test decodes two sequences alternately, token by token, with one module: everything a step needs "
           "must travel through past_kv / present_kv.")
def interleaved_hidden(ctx):
    """two sequences decoded interleaved with one module (no hidden state)"""
    d, h, t = 24, 3, 4
    ref = _weights(ctx, d, h)
    mod = _student(ctx, ref, d, h)
    xa, xb = _x(ctx, 1, t, d), _x(ctx, 2, t, d)
    with torch.no_grad():
        fa, fb = ref(xa, causal=True)[0], ref(xb, causal=True)[0]
    pa = pb = None
    for i in range(t):
        oa, pa = _call(mod, xa[:, i:i + 1], causal=True, past_kv=pa, use_cache=True)
        ob, pb = _call(mod, xb[:, i:i + 1], causal=True, past_kv=pb, use_cache=True)
        compare.tensor(oa, fa[:, i:i + 1], name=f"sequence A, step {i + 1}", atol=ATOL, rtol=RTOL)
        compare.tensor(ob, fb[:, i:i + 1], name=f"sequence B, step {i + 1}", atol=ATOL, rtol=RTOL)
