"""A second correct solution, written differently from the reference: descending sort with a
shifted cumulative sum for top-p, explicit per-row loops for the repetition penalty, a sampler
built on the inverse CDF of a single uniform draw per row, and the cache threaded through a
single loop."""

import torch
import torch.nn.functional as F


def greedy_decode(model, input_ids, max_new_tokens):
    tokens = [input_ids]
    with torch.inference_mode():
        for _ in range(max_new_tokens):
            logits = model(torch.cat(tokens, dim=1)).logits[:, -1, :]
            tokens.append(torch.argmax(logits, dim=1).unsqueeze(1))
    return torch.cat(tokens, dim=1)


def apply_repetition_penalty(logits, input_ids, penalty):
    out = logits.clone()
    for row in range(out.shape[0]):
        for tok in set(input_ids[row].tolist()):
            value = out[row, tok]
            out[row, tok] = value * penalty if value < 0 else value / penalty
    return out


def apply_temperature(logits, temperature):
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    return torch.div(logits, temperature)


def top_k_top_p_filter(logits, top_k=0, top_p=1.0):
    out = logits.clone()
    vocab = out.shape[-1]
    if top_k > 0 and top_k < vocab:
        threshold = out.topk(top_k, dim=-1).values[..., -1:]
        out[out < threshold] = -float("inf")
    if top_p < 1.0:
        probs, order = F.softmax(out, dim=-1).sort(dim=-1, descending=True)
        mass_before = probs.cumsum(dim=-1) - probs  # probability of the strictly better tokens
        drop_sorted = mass_before >= top_p
        drop_sorted[..., 0] = False
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        out = out.masked_fill(drop, -float("inf"))
    return out


def next_token_probs(logits, input_ids, temperature=1.0, top_k=0, top_p=1.0, repetition_penalty=1.0):
    x = logits if repetition_penalty == 1.0 else apply_repetition_penalty(logits, input_ids, repetition_penalty)
    x = top_k_top_p_filter(apply_temperature(x, temperature), top_k, top_p)
    return F.softmax(x, dim=-1)


def _draw(probs, generator):
    u = torch.rand(probs.shape[0], 1, generator=generator, device=probs.device).clamp_min(1e-12)
    cdf = probs.cumsum(dim=-1)
    idx = torch.searchsorted(cdf, u * cdf[:, -1:]).clamp(max=probs.shape[-1] - 1)
    return idx


def generate(model, input_ids, max_new_tokens, do_sample=False, temperature=1.0, top_k=0,
             top_p=1.0, repetition_penalty=1.0, use_cache=True, seed=None):
    gen = torch.Generator(device=input_ids.device)
    gen.manual_seed(0 if seed is None else seed)
    out_ids = input_ids
    past = None
    with torch.inference_mode():
        for step in range(max_new_tokens):
            if use_cache:
                feed = out_ids if step == 0 else out_ids[:, -1:]
                result = model(input_ids=feed, past_key_values=past, use_cache=True)
                past = result.past_key_values
            else:
                result = model(input_ids=out_ids, use_cache=False)
            logits = result.logits[:, -1, :]
            if do_sample:
                nxt = _draw(next_token_probs(logits, out_ids, temperature, top_k, top_p, repetition_penalty), gen)
            else:
                nxt = apply_repetition_penalty(logits, out_ids, repetition_penalty).argmax(-1, keepdim=True)
            out_ids = torch.cat([out_ids, nxt], dim=-1)
    return out_ids
