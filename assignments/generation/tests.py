"""Trusted driver for the `generation` assignment.

The model is a small GPT-2 (transformers.GPT2LMHeadModel) built from a fixed config and seed in
this trusted process; the same architecture is constructed inside the sandbox and receives these
weights with load_state_dict, so the student's code and the reference see the same network.
The vocabulary is 256 byte values; nothing is downloaded.

Tolerances and why:
- Logit transforms (repetition penalty, temperature, filtering): float32 elementwise ops, so kept
  values must match to atol=1e-6, rtol=1e-5 (one or two ulps), and the set of filtered (-inf)
  entries must match exactly. Test logits are built so that no token lies within 1e-3 of a
  top-p boundary and there are no ties at the k-th value: an exact mask comparison is then
  stable across platforms and summation orders.
- Distributions: total-variation distance <= 1e-5 (float32 softmax of identical logits).
- Greedy decoding is graded on exact tokens. The prompts are chosen (deterministically from the
  case seed) so that on the reference path the best token beats the runner-up by at least 0.05
  logits at every step; float32 vs TF32 or another summation order changes these logits by
  ~1e-3 at most, so an argmax can never flip.
- Sampling is graded on distributions, not on the tokens drawn: every sampled token must have a
  non-zero probability under the reference's filtered distribution, and 4000 draws of one step
  must match the reference probabilities to a total variation of 0.06 (the expected TV of a
  correct sampler is about 0.02 here; the bound is several standard deviations away).
- "Measurably faster" is measured in work, not in seconds, so that a loaded machine cannot change
  the outcome: torch's FlopCounterMode is entered inside the sandbox around the student's
  generate(use_cache=True) and counts the floating-point operations of every matmul/attention
  call. For 16 new tokens after a 64-token prompt a cached loop needs ~36 MFLOP and an uncached
  one ~525 MFLOP (14x); the student may use at most 2x the reference's cached count (slack for
  e.g. running the prompt twice, still 7x below a loop without cache). The count
  is exact and identical on CPU and GPU.
"""

from functools import lru_cache

import torch

from grader import compare
from grader.driver import Fail, case

SMALL = dict(vocab_size=256, n_positions=256, n_embd=64, n_layer=2, n_head=4, n_inner=256,
             resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, initializer_range=0.2,
             bos_token_id=0, eos_token_id=0)
MODEL_SEED = 2024

LOGIT_TOL = dict(atol=1e-6, rtol=1e-5)
PROB_TV = 1e-5
GREEDY_MARGIN = 0.05

# Forbidden: Hugging Face's own decoding (model.generate, GenerationMixin, logits processors and
# warpers): the [forbid] table of assignment.toml, enforced by the engine for every case (a scan of
# the submitted source in the trusted process, and stubs installed in the sandbox before the
# submission is imported; see grader/README.md).


@lru_cache(maxsize=1)
def _trusted_model():
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = SMALL
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(MODEL_SEED)
        model = GPT2LMHeadModel(GPT2Config(**cfg)).eval()
    return model


def _models(ctx):
    """The trusted model and a handle to the same network built inside the sandbox."""
    model = _trusted_model()
    cfg = SMALL
    cfg_handle = ctx.sub.construct("transformers.GPT2Config", **cfg)
    handle = ctx.sub.construct("transformers.GPT2LMHeadModel", cfg_handle)
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    handle.load_state_dict(state, strict=False)
    handle.call("eval")
    return model, handle


@torch.no_grad()
def _greedy_margins(ref, model, ids, n, penalty=1.0):
    """Reference greedy paths and, per row, the smallest top-1/top-2 logit gap met on the path."""
    seq = ids
    margin = torch.full((ids.shape[0],), float("inf"))
    for _ in range(n):
        logits = ref.apply_repetition_penalty(model(seq).logits[:, -1, :], seq, penalty)
        top2 = logits.topk(2, dim=-1).values
        margin = torch.minimum(margin, top2[:, 0] - top2[:, 1])
        seq = torch.cat([seq, logits.argmax(-1, keepdim=True)], dim=-1)
    return seq, margin


def _safe_prompts(ctx, model, batch, length, n, penalty=1.0):
    """Prompts whose reference greedy path has a clear winner at every step (see module doc).
    Rows are independent, so candidates are screened 32 at a time and the first good ones kept."""
    chosen = []
    for _ in range(20):
        ids = torch.randint(2, 256, (32, length), generator=ctx.rng)
        _, margin = _greedy_margins(ctx.ref, model, ids, n, penalty)
        chosen.extend(ids[i] for i in range(32) if margin[i] >= GREEDY_MARGIN)
        if len(chosen) >= batch:
            ids = torch.stack(chosen[:batch])
            return ids, _greedy_margins(ctx.ref, model, ids, n, penalty)[0]
    raise RuntimeError("no prompt with a clear greedy margin found")


def _logits(ctx, *shape, scale=3.0):
    return torch.randn(*shape, generator=ctx.rng) * scale


def _safe_top_p(probs_row, gen, lo=0.3, hi=0.95):
    """A top_p strictly between two cumulative masses of the sorted distribution, >= 1e-3 from
    each, so the token that crosses p is unambiguous."""
    cum = probs_row.sort(descending=True).values.cumsum(0)
    for _ in range(100):
        i = int(torch.randint(0, cum.numel() - 1, (1,), generator=gen))
        a, b = float(cum[i]), float(cum[i + 1])
        if lo <= a and b <= hi and b - a > 0.01:
            return a + (b - a) * (0.25 + 0.5 * float(torch.rand(1, generator=gen)))
    return 0.5 * (float(cum[0]) + float(cum[1]))


def _check_filter(got, expected, what):
    compare.is_tensor(got, what)
    compare.shape(got, tuple(expected.shape), what)
    exp_removed = torch.isneginf(expected)
    got_removed = torch.isneginf(got)
    if not torch.equal(exp_removed, got_removed):
        kept_exp = int((~exp_removed).sum())
        kept_got = int((~got_removed).sum())
        missing = (exp_removed & ~got_removed).nonzero().tolist()
        extra = (~exp_removed & got_removed).nonzero().tolist()
        detail = []
        if missing:
            detail.append(f"kept {len(missing)} token(s) that must be filtered, e.g. at index {missing[0]}")
        if extra:
            detail.append(f"filtered {len(extra)} token(s) that must be kept, e.g. at index {extra[0]}")
        raise Fail(f"{what}: {kept_got} tokens kept, expected {kept_exp}; " + "; ".join(detail) + ".")
    compare.tensor(got.masked_fill(got_removed, 0.0), expected.masked_fill(exp_removed, 0.0),
                   name=f"{what} (kept logits)", **LOGIT_TOL)


def _check_probs(ctx, got, expected, what):
    compare.is_tensor(got, what)
    compare.shape(got, tuple(expected.shape), what)
    compare.finite(got, what)
    compare.sums_to_one(got, dim=-1, atol=1e-5, name=what)
    compare.zeros_where(got, expected == 0, name=what)
    compare.distribution(got, expected, name=what, tv=PROB_TV)


# --------------------------------------------------------------------------------------------
# greedy decoding

@case(points=3, visible=True, timeout=60,
      hint="At every step run the model on the whole sequence so far, take the logits of the "
           "last position, pick argmax and append it.")
def greedy_basic(ctx):
    """greedy_decode: exact tokens, batch of 2, 12 new tokens"""
    model, handle = _models(ctx)
    ids, expected = _safe_prompts(ctx, model, 2, 5, 12)
    got = ctx.sub.call("greedy_decode", handle, ids, 12)
    compare.is_tensor(got, "greedy_decode's return value")
    compare.shape(got, tuple(expected.shape), "greedy_decode's return value")
    compare.exact(got, expected, "generated tokens")


@case(points=2, visible=False, timeout=60,
      hint="Return the prompt followed by the new tokens, for every row of the batch.")
def greedy_hidden(ctx):
    """greedy_decode: longer run, batch of 3, one-token prompt and zero new tokens"""
    model, handle = _models(ctx)
    ids, expected = _safe_prompts(ctx, model, 3, 9, 20)
    got = ctx.sub.call("greedy_decode", handle, ids, 20)
    compare.shape(got, tuple(expected.shape), "greedy_decode's return value")
    compare.exact(got, expected, "generated tokens")
    one, expected_one = _safe_prompts(ctx, model, 1, 1, 6)
    compare.exact(ctx.sub.call("greedy_decode", handle, one, 6), expected_one, "tokens after a 1-token prompt")
    compare.exact(ctx.sub.call("greedy_decode", handle, ids, 0), ids, "result of max_new_tokens=0")


# --------------------------------------------------------------------------------------------
# logit transforms

@case(points=2, visible=True,
      hint="For each id in input_ids: a positive logit is divided by the penalty, a negative one "
           "multiplied by it (CTRL rule). A token repeated in the context is penalised once.")
def repetition_penalty_basic(ctx):
    """apply_repetition_penalty: positive and negative logits, repeated ids"""
    logits = _logits(ctx, 2, 20)
    ids = torch.tensor([[3, 3, 7, 11, 0], [19, 5, 5, 5, 2]])
    logits[0, 3], logits[0, 7], logits[1, 5] = 2.5, -1.5, -0.75
    for penalty in (1.3, 2.0, 1.0):
        got = ctx.sub.call("apply_repetition_penalty", logits.clone(), ids, penalty)
        compare.tensor(got, ctx.ref.apply_repetition_penalty(logits, ids, penalty),
                       name=f"logits after penalty {penalty}", **LOGIT_TOL)


@case(points=1, visible=False,
      hint="Do not modify the input tensor in place and handle any batch size.")
def repetition_penalty_hidden(ctx):
    """apply_repetition_penalty: vocabulary of 256, long contexts, input left unchanged"""
    logits = _logits(ctx, 4, 256)
    ids = torch.randint(0, 256, (4, 40), generator=ctx.rng)
    got = ctx.sub.call("apply_repetition_penalty", logits, ids, 1.7)
    compare.tensor(got, ctx.ref.apply_repetition_penalty(logits, ids, 1.7), name="penalised logits", **LOGIT_TOL)


@case(points=1, visible=True,
      hint="Temperature divides the logits, before any softmax: T < 1 sharpens, T > 1 flattens.")
def temperature(ctx):
    """apply_temperature: T = 0.5, 1.0, 1.7"""
    logits = _logits(ctx, 3, 30)
    for t in (0.5, 1.0, 1.7):
        got = ctx.sub.call("apply_temperature", logits, t)
        compare.tensor(got, ctx.ref.apply_temperature(logits, t), name=f"logits at temperature {t}", **LOGIT_TOL)


@case(points=2, visible=True,
      hint="Top-k keeps exactly the k largest logits (torch.topk gives the k-th value) and sets "
           "every other entry to -inf; top_k=0 means no top-k filtering.")
def top_k(ctx):
    """top_k_top_p_filter: top-k only (k = 1, 5, 40 and 0 = off)"""
    logits = _logits(ctx, 3, 50)
    for k in (1, 5, 40, 0):
        got = ctx.sub.call("top_k_top_p_filter", logits, top_k=k)
        _check_filter(got, ctx.ref.top_k_top_p_filter(logits, top_k=k), f"top_k={k}")


@case(points=2, visible=True,
      hint="Sort by probability, accumulate, and keep the smallest set whose mass reaches top_p: "
           "the token that crosses top_p is kept too, and the most likely token always is.")
def top_p(ctx):
    """top_k_top_p_filter: nucleus (top-p) only, including the token that crosses p"""
    for rows in range(3):
        logits = _logits(ctx, 1, 40, scale=1.5 + rows)
        p = _safe_top_p(logits[0].softmax(-1), ctx.rng)
        got = ctx.sub.call("top_k_top_p_filter", logits, top_p=p)
        _check_filter(got, ctx.ref.top_k_top_p_filter(logits, top_p=p), f"top_p={p:.4f}")
    logits = _logits(ctx, 2, 40)
    got = ctx.sub.call("top_k_top_p_filter", logits, top_p=1.0)
    _check_filter(got, ctx.ref.top_k_top_p_filter(logits, top_p=1.0), "top_p=1.0 (off)")


@case(points=2, visible=False,
      hint="Apply top-k first, then top-p on the renormalised survivors; always keep at least one "
           "token; accept any leading batch dimensions.")
def top_k_top_p_hidden(ctx):
    """top_k_top_p_filter: both filters, tiny p, k larger than the vocabulary, 1-D and 3-D logits"""
    logits = _logits(ctx, 1, 64, scale=2.0)
    kept = ctx.ref.top_k_top_p_filter(logits, top_k=12)
    p = _safe_top_p(kept[0].softmax(-1), ctx.rng, lo=0.2, hi=0.9)
    got = ctx.sub.call("top_k_top_p_filter", logits, top_k=12, top_p=p)
    _check_filter(got, ctx.ref.top_k_top_p_filter(logits, top_k=12, top_p=p), f"top_k=12, top_p={p:.4f}")
    got = ctx.sub.call("top_k_top_p_filter", logits, top_p=1e-6)
    _check_filter(got, ctx.ref.top_k_top_p_filter(logits, top_p=1e-6), "top_p=1e-6 (one token must survive)")
    got = ctx.sub.call("top_k_top_p_filter", logits, top_k=500)
    _check_filter(got, ctx.ref.top_k_top_p_filter(logits, top_k=500), "top_k=500 > vocabulary")
    flat = _logits(ctx, 30)
    got = ctx.sub.call("top_k_top_p_filter", flat, top_k=4)
    _check_filter(got, ctx.ref.top_k_top_p_filter(flat, top_k=4), "1-D logits, top_k=4")
    cube = _logits(ctx, 2, 3, 25)
    got = ctx.sub.call("top_k_top_p_filter", cube, top_k=6)
    _check_filter(got, ctx.ref.top_k_top_p_filter(cube, top_k=6), "3-D logits, top_k=6")


# --------------------------------------------------------------------------------------------
# the sampling distribution

@case(points=2, visible=True,
      hint="Order: repetition penalty, then temperature (divide the logits), then top-k, then "
           "top-p, then one softmax. Temperature must act on logits, not on probabilities.")
def next_token_probs_basic(ctx):
    """next_token_probs: temperature, top-k and top-p combined"""
    logits = _logits(ctx, 2, 48, scale=2.0)
    ids = torch.randint(0, 48, (2, 6), generator=ctx.rng)
    for kw in (dict(temperature=0.7), dict(temperature=1.4, top_k=10), dict(temperature=0.8, top_k=0, top_p=0.0)):
        got = ctx.sub.call("next_token_probs", logits, ids, **kw)
        _check_probs(ctx, got, ctx.ref.next_token_probs(logits, ids, **kw), f"probabilities for {kw}")
    sharp = ctx.ref.next_token_probs(logits, ids, temperature=0.7)
    p = _safe_top_p(sharp[0], ctx.rng)
    kw = dict(temperature=0.7, top_p=p)
    got = ctx.sub.call("next_token_probs", logits[:1], ids[:1], **kw)
    _check_probs(ctx, got, ctx.ref.next_token_probs(logits[:1], ids[:1], **kw), "probabilities for temperature=0.7, top_p=%.4f" % p)


@case(points=2, visible=False,
      hint="The repetition penalty comes first, on the raw logits; then temperature, top-k, top-p.")
def next_token_probs_hidden(ctx):
    """next_token_probs: every transform at once"""
    logits = _logits(ctx, 1, 256, scale=2.5)
    ids = torch.randint(0, 256, (1, 30), generator=ctx.rng)
    staged = ctx.ref.top_k_top_p_filter(
        ctx.ref.apply_temperature(ctx.ref.apply_repetition_penalty(logits, ids, 1.4), 1.3), top_k=40)
    p = _safe_top_p(staged[0].softmax(-1), ctx.rng)
    kw = dict(temperature=1.3, top_k=40, top_p=p, repetition_penalty=1.4)
    got = ctx.sub.call("next_token_probs", logits, ids, **kw)
    _check_probs(ctx, got, ctx.ref.next_token_probs(logits, ids, **kw), "probabilities")
    kw = dict(temperature=0.5, repetition_penalty=2.0)
    got = ctx.sub.call("next_token_probs", logits, ids, **kw)
    _check_probs(ctx, got, ctx.ref.next_token_probs(logits, ids, **kw), "probabilities for temperature=0.5, penalty=2.0")


# --------------------------------------------------------------------------------------------
# generation loop

@torch.no_grad()
def _support_check(ref, model, prompt_len, seq, kw, what):
    """Every sampled token must be possible under the reference's filtered distribution."""
    for t in range(prompt_len, seq.shape[1]):
        logits = model(seq[:, :t]).logits[:, -1, :]
        probs = ref.next_token_probs(logits, seq[:, :t], **kw)
        p = probs.gather(-1, seq[:, t:t + 1]).squeeze(-1)
        bad = (p <= 0).nonzero().flatten().tolist()
        if bad:
            raise Fail(f"{what}: token {int(seq[bad[0], t])} sampled at position {t} of row {bad[0]} "
                       f"has probability 0 after filtering with {kw}.")


@case(points=3, visible=True, timeout=60,
      hint="Sample with torch.multinomial from next_token_probs(...), using a torch.Generator "
           "seeded with `seed`; with do_sample=False take the argmax of the penalised logits.")
def sampling(ctx):
    """generate(do_sample=True): tokens drawn only from the filtered distribution, with the right frequencies"""
    model, handle = _models(ctx)
    ids = torch.randint(2, 256, (3, 6), generator=ctx.rng)
    kw = dict(temperature=0.9, top_k=20, top_p=0.8, repetition_penalty=1.2)
    got = ctx.sub.call("generate", handle, ids, 10, do_sample=True, seed=7, **kw)
    compare.is_tensor(got, "generate's return value")
    compare.shape(got, (3, 16), "generate's return value")
    compare.exact(got[:, :6], ids, "the prompt part of the output")
    _support_check(ctx.ref, model, 6, got, kw, "sampling with top_k=20, top_p=0.8")
    again = ctx.sub.call("generate", handle, ids, 10, do_sample=True, seed=7, **kw)
    compare.exact(again, got, "a second run with the same seed")
    # 4000 one-step draws from the same prompt: empirical frequencies vs the exact distribution
    prompt = torch.randint(2, 256, (1, 8), generator=ctx.rng)
    kw = dict(temperature=0.7, top_k=12, top_p=0.95)
    draws = ctx.sub.call("generate", handle, prompt.expand(4000, 8).contiguous(), 1, do_sample=True, seed=11, **kw)
    compare.shape(draws, (4000, 9), "generate's return value for a batch of 4000")
    with torch.no_grad():
        exact = ctx.ref.next_token_probs(model(prompt).logits[:, -1, :], prompt, **kw)[0]
    counts = torch.bincount(draws[:, -1].long().clamp(0, 255), minlength=256).double()
    tv = 0.5 * float((counts / counts.sum() - exact.double()).abs().sum())
    if tv > 0.06:
        raise Fail(f"the frequencies of 4000 sampled tokens are far from the distribution of "
                   f"next_token_probs with {kw} (total variation {tv:.3f} > 0.06): is the sampling "
                   f"distribution the filtered, temperature-scaled one?")


@case(points=2, visible=True, timeout=60,
      hint="Call the model once on the prompt with use_cache=True, then feed only the newest token "
           "together with out.past_key_values.")
def cached_matches_uncached(ctx):
    """generate(use_cache=True): the same greedy tokens as the uncached loop"""
    model, handle = _models(ctx)
    ids, expected = _safe_prompts(ctx, model, 2, 7, 20)
    got = ctx.sub.call("generate", handle, ids, 20, use_cache=True)
    compare.is_tensor(got, "generate's return value")
    compare.shape(got, tuple(expected.shape), "generate's return value")
    compare.exact(got, expected, "tokens generated with the cache")
    got = ctx.sub.call("generate", handle, ids, 20, use_cache=False)
    compare.exact(got, expected, "tokens generated without the cache")


@case(points=2, visible=False, timeout=60,
      hint="Apply the repetition penalty to the whole sequence so far (prompt and generated "
           "tokens), with and without the cache.")
def cached_hidden(ctx):
    """generate: repetition penalty with the cache, and cached sampling equal to uncached sampling"""
    model, handle = _models(ctx)
    ids, expected = _safe_prompts(ctx, model, 2, 4, 16, penalty=1.5)
    got = ctx.sub.call("generate", handle, ids, 16, repetition_penalty=1.5, use_cache=True)
    compare.exact(got, expected, "greedy tokens with repetition_penalty=1.5 and the cache")
    kw = dict(do_sample=True, temperature=1.1, top_k=30, seed=5)
    a = ctx.sub.call("generate", handle, ids, 12, use_cache=True, **kw)
    b = ctx.sub.call("generate", handle, ids, 12, use_cache=False, **kw)
    compare.exact(a, b, "sampled tokens with the cache vs without it (same seed)")


def _count_flops(fn):
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops()


@case(points=2, visible=True, timeout=60,
      hint="With the cache each step must feed only the new token (shape (batch, 1)) and the past "
           "keys/values; feeding the whole sequence again costs as much as no cache at all.")
def cache_work(ctx):
    """generate(use_cache=True) does the work of a cached loop (FLOPs counted inside the sandbox)"""
    model, handle = _models(ctx)
    ids = torch.randint(2, 256, (2, 64), generator=ctx.rng)
    n = 16
    ref_cached = _count_flops(lambda: ctx.ref.generate(model, ids, n, use_cache=True))
    ref_uncached = _count_flops(lambda: ctx.ref.generate(model, ids, n, use_cache=False))
    counter = ctx.sub.construct("torch.utils.flop_counter.FlopCounterMode", display=False)
    counter.call("__enter__")
    try:
        out = ctx.sub.call("generate", handle, ids, n, use_cache=True)
    finally:
        counter.call("__exit__", None, None, None)
    flops = counter.call("get_total_flops")
    compare.is_tensor(out, "generate's return value")
    compare.shape(out, (2, 64 + n), "generate's return value")
    if not isinstance(flops, int) or flops <= 0:
        raise Fail("generate(use_cache=True) did not run the model (no floating-point work was counted).")
    ctx.metric("cache_flops_ratio", ref_uncached / max(flops, 1))
    if flops > 2.0 * ref_cached:
        raise Fail(f"generate(use_cache=True) computed {flops / 1e6:.0f} MFLOP for {n} new tokens after a "
                   f"64-token prompt; a cached loop needs {ref_cached / 1e6:.0f} MFLOP and a loop without "
                   f"cache {ref_uncached / 1e6:.0f} MFLOP: the cache is not being used.")
