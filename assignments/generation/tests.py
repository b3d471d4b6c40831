"""Trusted driver for the `generation` assignment.

Promises of handout.md, sentence by sentence, and the case(s) that exercise each:

  greedy: run the whole sequence, argmax of the last position ........ greedy_basic, greedy_hidden
  greedy: returns prompt + new tokens, (batch, prompt_len + n) ........ greedy_basic (prompt part, shape),
                                          greedy_hidden (1-token prompt, max_new_tokens=0)
  transforms return new tensors, never modify the input .............. every transform call goes through
                                          _call_pure (call_with_args: the arguments as the function left them):
                                          repetition_penalty_*, temperature, top_k, top_p, top_k_top_p_hidden,
                                          top_p_full_vocabulary, next_token_probs_*; generate's input_ids: sampling
  penalty: positive / theta, non-positive * theta ..................... repetition_penalty_basic (2.5, -1.5, -0.75),
                                          repetition_penalty_hidden (vocabulary 256, 40-token contexts)
  penalty: a token that appears five times is penalised once ......... repetition_penalty_basic (row [8]*5, [5]*3)
  penalty = 1.0 changes nothing ...................................... repetition_penalty_basic
  temperature: logits / T before the softmax ......................... temperature, next_token_probs_*
  filtered tokens get -inf ........................................... every filter check (exact -inf set)
  any number of leading dimensions ................................... top_k_top_p_leading_dims (1-D and 3-D,
                                          top-k and top-p)
  top-k keeps the k largest; ties with the k-th kept ................. top_k (k = 1, 5, 40; three-way tie at k=5)
  top_k = 0 off; top_k > vocabulary keeps everything ................. top_k (0), top_k_top_p_hidden (500)
  top-p on the survivors of top-k, renormalised ...................... top_p (top_k=10 + top_p),
                                          top_k_top_p_hidden (top_k=12 + top_p)
  smallest prefix reaching top_p, crossing token included ............ top_p, top_k_top_p_hidden,
                                          top_p_full_vocabulary (nucleus on 50,257 tokens)
  tied probabilities inside the nucleus .............................. top_p (two tied most likely tokens);
                                          ties exactly at the crossing are not graded (handout says so)
  at least one token survives, even for top_p = 0 .................... top_k_top_p_hidden (top_p=0, 1e-6),
                                          next_token_probs_basic (top_p=0.0)
  top_p = 1.0 is off (any vocabulary size) ........................... top_p (40 tokens), top_p_full_vocabulary
                                          (50,257 tokens: a float cumulative sum passes 1.0 there)
  next_token_probs: penalty -> temperature -> top-k -> top-p -> softmax;
  rows sum to 1; filtered exactly 0 .................................. next_token_probs_basic,
                                          next_token_probs_hidden (every transform at once)
  do_sample=False: greedy on the penalised logits .................... cached_matches_uncached, cached_hidden
  do_sample=True: multinomial from next_token_probs, seeded generator;
  same seed, same tokens ............................................. sampling (support, repeat, 4000 draws)
  penalty context = prompt + generated tokens ........................ cached_hidden, sampling (support check)
  use_cache=True feeds the newest token with the cache ............... cache_work (FLOPs), cached_*
  use_cache=False gives the same tokens .............................. cached_matches_uncached, cached_hidden
  Rules: no model.generate / logits processors ....................... [forbid] in assignment.toml (engine)
  Rules: torch.no_grad ............................................... not graded: advice, the outputs are the
                                          same either way
  Sampling is never graded on particular tokens ...................... sampling compares distributions only

Hints are true by construction: no case has a static hint; a message names a known mistake only
when the student's output equals what the reference gives with that mistake applied on the same
inputs (_penalty_variant, _filter_variant, _probs_variants); otherwise it says what differs and where.

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

from grader.authoring import Fail, case, compare

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
        i = int(torch.randint(0, min(cum.numel() - 1, 256), (1,), generator=gen))  # the head of a big vocabulary
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
# true hints: a mistake is named only when the student's output is what that mistake gives on the
# same inputs (computed here from the reference with the mistake applied); otherwise the message
# says what differs and where, and nothing more.

NEG_INF = float("-inf")


def _penalty_variant(logits, ids, penalty, mistake):
    """The CTRL penalty with one known mistake applied."""
    out = logits.clone()
    if mistake == "per_occurrence":  # a token seen n times is penalised n times
        for row in range(ids.shape[0]):
            for t in ids[row].tolist():
                s = out[row, t]
                out[row, t] = s * penalty if s < 0 else s / penalty
        return out
    picked = torch.gather(logits, -1, ids)
    if mistake == "swapped":
        picked = torch.where(picked < 0, picked / penalty, picked * penalty)
    elif mistake == "divide_all":
        picked = picked / penalty
    return out.scatter(-1, ids, picked)


PENALTY_MISTAKES = {
    "swapped": "your values are what the rule gives with its two cases swapped: a positive logit is "
               "divided by the penalty and a negative one multiplied by it, so that both become less likely.",
    "divide_all": "your values are what dividing every context logit by the penalty gives: a negative "
                  "logit divided by the penalty moves towards 0, which makes the token more likely; "
                  "multiply negative logits instead.",
    "per_occurrence": "your values are what penalising a token once per occurrence gives: a token that "
                      "appears several times in the context is penalised once.",
}


def _filter_variant(logits, top_k=0, top_p=1.0, mistake=None):
    """top_k_top_p_filter with one known mistake applied (None: the handout's rule)."""
    x = logits.clone()
    vocab = x.size(-1)
    if top_k and top_k > 0:
        k = min(int(top_k) + (1 if mistake == "k_plus_one" else 0), vocab)
        if mistake == "drop_ties":  # exactly k survivors, ties at the k-th value broken by index
            keep = torch.zeros_like(x, dtype=torch.bool).scatter(-1, torch.topk(x, k, dim=-1).indices, True)
            x = x.masked_fill(~keep, NEG_INF)
        else:
            x = x.masked_fill(x < torch.topk(x, k, dim=-1).values[..., -1:], NEG_INF)
    if top_p < 1.0:
        source = logits if mistake == "p_before_k" else x
        sp, si = source.softmax(-1).sort(dim=-1, descending=True)
        cum = sp.cumsum(-1)
        if mistake == "exclude_crossing":
            remove = cum > top_p
        else:
            remove = (cum - sp) >= top_p
        remove[..., :1] = False
        x = x.masked_fill(remove.scatter(-1, si, remove), NEG_INF)
    return x


FILTER_MISTAKES = {
    "k_plus_one": "your set of kept tokens is what top-k with k+1 tokens gives: keep the k largest.",
    "drop_ties": "your set of kept tokens is what keeping exactly k tokens (torch.topk's indices) gives: "
                 "tokens tied with the k-th largest logit must be kept too.",
    "exclude_crossing": "your set of kept tokens is what stopping before the crossing token gives: the token "
                        "that crosses top_p is kept too.",
    "p_before_k": "your set of kept tokens is what top-p computed on the unfiltered logits gives: top-p "
                  "works on the probabilities of the tokens that survived top-k (renormalised).",
}


def _check_filter(got, expected, what, logits=None, top_k=0, top_p=1.0):
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
        empty = got_removed.all(dim=-1)
        if bool(empty.any()):
            row = [int(i) for i in empty.nonzero()[0]]
            detail.append(f"every token of row {row} was filtered (at least one token, the most likely, "
                          f"always survives)")
        hint = None
        if logits is not None:
            for key, text in FILTER_MISTAKES.items():
                cand = torch.isneginf(_filter_variant(logits, top_k, top_p, key))
                if not torch.equal(cand, exp_removed) and torch.equal(cand, got_removed):
                    hint = text
                    break
        raise Fail(f"{what}: {kept_got} tokens kept, expected {kept_exp}; " + "; ".join(detail) + ".", hint=hint)
    compare.tensor(got.masked_fill(got_removed, 0.0), expected.masked_fill(exp_removed, 0.0),
                   name=f"{what} (kept logits)", **LOGIT_TOL)


def _probs_variants(ref, logits, ids, temperature=1.0, top_k=0, top_p=1.0, repetition_penalty=1.0):
    """Distributions that known mistakes give on these inputs (computed from the reference)."""
    pen = lambda: ref.apply_repetition_penalty(logits, ids, repetition_penalty)  # noqa: E731
    return [
        ("temperature_after_softmax",
         lambda: torch.softmax(ref.top_k_top_p_filter(pen(), top_k=top_k, top_p=top_p), -1),
         "Temperature must act on logits, not on probabilities: your distribution is what dividing the "
         "probabilities by T and renormalising gives (T then has no effect)."),
        ("filter_before_temperature",
         lambda: torch.softmax(ref.top_k_top_p_filter(pen(), top_k=top_k, top_p=top_p) / temperature, -1),
         "your distribution is what filtering before the temperature gives: divide by the temperature "
         "first, then apply top-k and top-p."),
        ("penalty_ignored",
         lambda: ref.next_token_probs(logits, ids, temperature, top_k, top_p, 1.0),
         "your distribution is what it would be without the repetition penalty."),
        ("exclude_crossing",
         lambda: torch.softmax(_filter_variant(ref.apply_temperature(pen(), temperature), top_k, top_p,
                                               "exclude_crossing"), -1),
         "your distribution is what stopping the nucleus before the crossing token gives: the token "
         "that crosses top_p is kept too."),
    ]


def _tv(a, b):
    return float(0.5 * (a.double() - b.double()).abs().sum(-1).max())


def _check_probs(ctx, got, expected, what, logits=None, ids=None, **kw):
    try:
        compare.is_tensor(got, what)
        compare.shape(got, tuple(expected.shape), what)
        compare.finite(got, what)
        compare.sums_to_one(got, dim=-1, atol=1e-5, name=what)
        compare.zeros_where(got, expected == 0, name=what)
        compare.distribution(got, expected, name=what, tv=PROB_TV)
    except Fail as exc:
        hint = None
        if logits is not None and isinstance(got, torch.Tensor) and got.shape == expected.shape \
                and bool(torch.isfinite(got).all()):
            for _key, cand, text in _probs_variants(ctx.ref, logits, ids, **kw):
                c = cand()
                if _tv(c, expected) > 100 * PROB_TV and _tv(got, c) <= PROB_TV and \
                        torch.equal(got == 0, c == 0):
                    hint = text
                    break
        raise Fail(exc.message, hint=hint) from None


def _close(a, b):
    return (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape
            and a.is_floating_point() and bool(torch.isfinite(a).all()) and bool(torch.isfinite(b).all())
            and bool(torch.allclose(a.double(), b.double(), **LOGIT_TOL)))


def _tensor_or_mistake(got, expected, candidates, name, messages):
    """compare.tensor; when it fails, the hint names the first known mistake whose output (the
    reference with that mistake applied, on the same inputs) the student's output matches while
    differing from the expected values; no match, no hint."""
    try:
        compare.tensor(got, expected, name=name, **LOGIT_TOL)
    except Fail as exc:
        hint = None
        for key, cand in candidates:
            c = cand()
            if not _close(c, expected) and _close(got, c):
                hint = messages[key]
                break
        raise Fail(exc.message, hint=hint) from None


ARG_NAMES = {
    "apply_repetition_penalty": ("logits", "input_ids", "penalty"),
    "apply_temperature": ("logits", "temperature"),
    "top_k_top_p_filter": ("logits",),
    "next_token_probs": ("logits", "input_ids"),
    "generate": ("model", "input_ids"),
}


def _call_pure(ctx, name, *args, **kwargs):
    """Call ``name`` and fail if it changed one of its tensor arguments in place (the handout: the
    logit transforms return new tensors and never modify their input)."""
    got, args_after, kwargs_after = ctx.sub.call_with_args(name, *args, **kwargs)
    names = ARG_NAMES.get(name, ())
    pairs = [(names[i] if i < len(names) else f"argument {i + 1}", a, b) for i, (a, b) in enumerate(zip(args, args_after))]
    pairs += [(k, v, kwargs_after.get(k)) for k, v in kwargs.items()]
    for label, before, after in pairs:
        if isinstance(before, torch.Tensor):
            if not isinstance(after, torch.Tensor) or after.shape != before.shape or not torch.equal(after, before):
                changed = "" if not isinstance(after, torch.Tensor) or after.shape != before.shape else \
                    f" ({int((after != before).sum())} of {before.numel()} values changed)"
                raise Fail(f"{name} modified its input `{label}` in place{changed}: the handout asks for a new "
                           f"tensor and the input left unchanged.")
    return got


# --------------------------------------------------------------------------------------------
# greedy decoding

@case(points=3, visible=True, timeout=60)
def greedy_basic(ctx):
    """greedy_decode: exact tokens, batch of 2, 12 new tokens"""
    model, handle = _models(ctx)
    ids, expected = _safe_prompts(ctx, model, 2, 5, 12)
    got = ctx.sub.call("greedy_decode", handle, ids, 12)
    compare.is_tensor(got, "greedy_decode's return value")
    compare.shape(got, tuple(expected.shape), "greedy_decode's return value (prompt + new tokens)")
    compare.exact(got[:, :5], ids, "the prompt part of greedy_decode's return value")
    compare.exact(got, expected, "generated tokens")


@case(points=2, visible=False, timeout=60)
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

def _check_penalty(ctx, got, logits, ids, penalty, what):
    expected = ctx.ref.apply_repetition_penalty(logits, ids, penalty)
    candidates = [(k, (lambda k=k: _penalty_variant(logits, ids, penalty, k))) for k in PENALTY_MISTAKES]
    _tensor_or_mistake(got, expected, candidates, what, PENALTY_MISTAKES)


@case(points=2, visible=True)
def repetition_penalty_basic(ctx):
    """apply_repetition_penalty: positive and negative logits, ids repeated up to five times, penalty 1.0"""
    logits = _logits(ctx, 3, 20)
    ids = torch.tensor([[3, 3, 7, 11, 0], [19, 5, 5, 5, 2], [8, 8, 8, 8, 8]])
    logits[0, 3], logits[0, 7], logits[1, 5], logits[2, 8] = 2.5, -1.5, -0.75, 1.25
    for penalty in (1.3, 2.0, 1.0):
        got = _call_pure(ctx, "apply_repetition_penalty", logits, ids, penalty)
        _check_penalty(ctx, got, logits, ids, penalty, f"logits after penalty {penalty}")


@case(points=1, visible=False)
def repetition_penalty_hidden(ctx):
    """apply_repetition_penalty: vocabulary of 256, long contexts, input left unchanged"""
    logits = _logits(ctx, 4, 256)
    ids = torch.randint(0, 256, (4, 40), generator=ctx.rng)
    got = _call_pure(ctx, "apply_repetition_penalty", logits, ids, 1.7)
    _check_penalty(ctx, got, logits, ids, 1.7, "penalised logits")


@case(points=1, visible=True)
def temperature(ctx):
    """apply_temperature: T = 0.5, 1.0, 1.7, input left unchanged"""
    logits = _logits(ctx, 3, 30)
    for t in (0.5, 1.0, 1.7):
        got = _call_pure(ctx, "apply_temperature", logits, t)
        _tensor_or_mistake(got, ctx.ref.apply_temperature(logits, t), [("times", lambda t=t: logits * t)],
                           f"logits at temperature {t}",
                           {"times": "your values are the logits multiplied by T: temperature divides them."})


def _filter(ctx, logits, what, **kw):
    got = _call_pure(ctx, "top_k_top_p_filter", logits, **kw)
    _check_filter(got, ctx.ref.top_k_top_p_filter(logits, **kw), what, logits, kw.get("top_k", 0), kw.get("top_p", 1.0))


def _tied_logits(ctx, rows, vocab, k):
    """Logits whose k-th and (k+1)-th (and (k+2)-th) largest values are exactly equal."""
    x = _logits(ctx, rows, vocab)
    for r in range(rows):
        order = x[r].argsort(descending=True)
        x[r, order[k]] = x[r, order[k - 1]]
        x[r, order[k + 1]] = x[r, order[k - 1]]
    return x


@case(points=2, visible=True)
def top_k(ctx):
    """top_k_top_p_filter: top-k only (k = 1, 5, 40 and 0 = off), ties at the k-th value, input unchanged"""
    logits = _logits(ctx, 3, 50)
    for k in (1, 5, 40, 0):
        _filter(ctx, logits, f"top_k={k}", top_k=k)
    _filter(ctx, _tied_logits(ctx, 2, 50, 5), "top_k=5 with three logits tied at the 5th largest value", top_k=5)


def _tied_top_p_logits(ctx):
    """Two tokens with exactly the same, largest logit and a tail: p between the tie's total and the
    next token's, so the tie lies inside the nucleus (ties exactly at the crossing are not graded)."""
    x = _logits(ctx, 1, 40, scale=1.0)
    top = float(x.max()) + 2.0
    x[0, 3] = top
    x[0, 17] = top
    return x


@case(points=2, visible=True)
def top_p(ctx):
    """top_k_top_p_filter: nucleus (top-p), including the token that crosses p, tied tokens, top_p=1.0, after top-k"""
    for rows in range(3):
        logits = _logits(ctx, 1, 40, scale=1.5 + rows)
        p = _safe_top_p(logits[0].softmax(-1), ctx.rng)
        _filter(ctx, logits, f"top_p={p:.4f}", top_p=p)
    tied = _tied_top_p_logits(ctx)
    probs = tied[0].softmax(-1).sort(descending=True).values.cumsum(0)
    p = float(probs[1] + 0.5 * (probs[2] - probs[1]))
    _filter(ctx, tied, f"top_p={p:.4f} with the two most likely tokens tied", top_p=p)
    logits = _logits(ctx, 2, 40)
    _filter(ctx, logits, "top_p=1.0 (off)", top_p=1.0)
    both = _logits(ctx, 1, 64, scale=1.0)
    p = _safe_top_p(ctx.ref.top_k_top_p_filter(both, top_k=10)[0].softmax(-1), ctx.rng, lo=0.3, hi=0.9)
    _filter(ctx, both, f"top_k=10, then top_p={p:.4f} on the survivors", top_k=10, top_p=p)


@case(points=2, visible=False)
def top_k_top_p_hidden(ctx):
    """top_k_top_p_filter: both filters, top_p = 0 and 1e-6, k larger than the vocabulary"""
    logits = _logits(ctx, 1, 64, scale=2.0)
    kept = ctx.ref.top_k_top_p_filter(logits, top_k=12)
    p = _safe_top_p(kept[0].softmax(-1), ctx.rng, lo=0.2, hi=0.9)
    _filter(ctx, logits, f"top_k=12, top_p={p:.4f}", top_k=12, top_p=p)
    _filter(ctx, logits, "top_p=1e-6 (one token must survive)", top_p=1e-6)
    _filter(ctx, logits, "top_p=0 (one token must survive)", top_p=0.0)
    _filter(ctx, logits, "top_k=500 > vocabulary", top_k=500)


@case(points=1, visible=True)
def top_k_top_p_leading_dims(ctx):
    """top_k_top_p_filter: 1-D logits (vocab,) and 3-D logits (2, 3, vocab), top-k and top-p"""
    flat = _logits(ctx, 30)
    _filter(ctx, flat, "1-D logits, top_k=4", top_k=4)
    p = _safe_top_p(flat.softmax(-1), ctx.rng)
    _filter(ctx, flat, f"1-D logits, top_p={p:.4f}", top_p=p)
    cube = _logits(ctx, 2, 3, 25)
    _filter(ctx, cube, "3-D logits, top_k=6", top_k=6)
    # one p that is safe (>= 1e-3 from every cumulative mass) in all six rows
    sorted_cum = cube.softmax(-1).sort(dim=-1, descending=True).values.cumsum(-1).reshape(-1)
    for _ in range(200):
        p = 0.3 + 0.6 * float(torch.rand(1, generator=ctx.rng))
        if bool(((sorted_cum - p).abs() > 1e-3).all()):
            break
    _filter(ctx, cube, f"3-D logits, top_p={p:.4f}", top_p=p)


BIG_VOCAB = 50257  # GPT-2's vocabulary


@case(points=1, visible=True)
def top_p_full_vocabulary(ctx):
    """top_k_top_p_filter: top_p=1.0 keeps all 50,257 tokens of a GPT-2-sized vocabulary; a nucleus there"""
    logits = _logits(ctx, 4, BIG_VOCAB, scale=3.0)  # at this scale a float32 cumulative sum passes 1.0
    got = _call_pure(ctx, "top_k_top_p_filter", logits, top_p=1.0)
    compare.is_tensor(got, "top_p=1.0 on 50,257 tokens")
    compare.shape(got, tuple(logits.shape), "top_p=1.0 on 50,257 tokens")
    removed = int(torch.isneginf(got).sum())
    if removed:
        raise Fail(f"top_p=1.0 on a vocabulary of 50,257 tokens filtered {removed} token(s); top_p=1.0 switches "
                   f"top-p off and must keep every token (note: a float32 cumulative sum over 50,257 "
                   f"probabilities does not end at exactly 1.0).")
    compare.tensor(got, logits, name="logits after top_p=1.0", **LOGIT_TOL)
    peaked = _logits(ctx, 1, BIG_VOCAB, scale=5.0)
    p = _safe_top_p(peaked[0].softmax(-1), ctx.rng, lo=0.3, hi=0.9)
    _filter(ctx, peaked, f"top_p={p:.4f} on 50,257 tokens", top_p=p)


# --------------------------------------------------------------------------------------------
# the sampling distribution

def _probs(ctx, logits, ids, what, **kw):
    got = _call_pure(ctx, "next_token_probs", logits, ids, **kw)
    _check_probs(ctx, got, ctx.ref.next_token_probs(logits, ids, **kw), what, logits, ids, **kw)


@case(points=2, visible=True)
def next_token_probs_basic(ctx):
    """next_token_probs: temperature, top-k and top-p combined"""
    logits = _logits(ctx, 2, 48, scale=2.0)
    ids = torch.randint(0, 48, (2, 6), generator=ctx.rng)
    for kw in (dict(temperature=0.7), dict(temperature=1.4, top_k=10), dict(temperature=0.8, top_k=0, top_p=0.0)):
        _probs(ctx, logits, ids, f"probabilities for {kw}", **kw)
    sharp = ctx.ref.next_token_probs(logits, ids, temperature=0.7)
    p = _safe_top_p(sharp[0], ctx.rng)
    _probs(ctx, logits[:1], ids[:1], "probabilities for temperature=0.7, top_p=%.4f" % p, temperature=0.7, top_p=p)


@case(points=2, visible=False)
def next_token_probs_hidden(ctx):
    """next_token_probs: every transform at once"""
    logits = _logits(ctx, 1, 256, scale=2.5)
    ids = torch.randint(0, 256, (1, 30), generator=ctx.rng)
    staged = ctx.ref.top_k_top_p_filter(
        ctx.ref.apply_temperature(ctx.ref.apply_repetition_penalty(logits, ids, 1.4), 1.3), top_k=40)
    p = _safe_top_p(staged[0].softmax(-1), ctx.rng)
    _probs(ctx, logits, ids, "probabilities", temperature=1.3, top_k=40, top_p=p, repetition_penalty=1.4)
    _probs(ctx, logits, ids, "probabilities for temperature=0.5, penalty=2.0", temperature=0.5, repetition_penalty=2.0)


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


@case(points=3, visible=True, timeout=60)
def sampling(ctx):
    """generate(do_sample=True): tokens drawn only from the filtered distribution, with the right frequencies"""
    model, handle = _models(ctx)
    ids = torch.randint(2, 256, (3, 6), generator=ctx.rng)
    kw = dict(temperature=0.9, top_k=20, top_p=0.8, repetition_penalty=1.2)
    got = _call_pure(ctx, "generate", handle, ids, 10, do_sample=True, seed=7, **kw)
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
    freq = counts / counts.sum()
    tv = 0.5 * float((freq - exact.double()).abs().sum())
    if tv > 0.06:
        worst = int((freq - exact.double()).abs().argmax())
        raise Fail(f"the frequencies of 4000 sampled tokens are far from the distribution of next_token_probs "
                   f"with {kw} (total variation {tv:.3f} > 0.06); the largest gap is token {worst}: sampled "
                   f"{float(freq[worst]):.1%} of the time, probability {float(exact[worst]):.1%}.")


@case(points=2, visible=True, timeout=60)
def cached_matches_uncached(ctx):
    """generate(use_cache=True): the same greedy tokens as the uncached loop"""
    model, handle = _models(ctx)
    ids, expected = _safe_prompts(ctx, model, 2, 7, 20)
    got = ctx.sub.call("generate", handle, ids, 20, use_cache=True)
    compare.is_tensor(got, "generate's return value")
    compare.shape(got, tuple(expected.shape), "generate's return value")
    uncached = ctx.sub.call("generate", handle, ids, 20, use_cache=False)
    try:
        compare.exact(got, expected, "tokens generated with the cache")
    except Fail as exc:
        same = isinstance(uncached, torch.Tensor) and uncached.shape == expected.shape and torch.equal(uncached, expected)
        raise Fail(exc.message + (" (with use_cache=False your tokens are right: the difference comes from the "
                                  "cached path)" if same else "")) from None
    compare.exact(uncached, expected, "tokens generated without the cache")


@case(points=2, visible=False, timeout=60)
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


@case(points=2, visible=True, timeout=60)
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
