"""A correct solution written with plain Python loops over rows and tokens (the way a first
attempt often looks): the penalty walks a set of context ids, top-k finds the k-th value by
sorting a list, and the nucleus accumulates probabilities in decreasing order until the mass of
the tokens *strictly* more likely than the current one reaches top_p. Any leading dimensions are
handled by flattening to rows. The cache is a tuple of per-layer tensors passed back unchanged."""

import math

import torch


def apply_repetition_penalty(logits, input_ids, penalty):
    out = logits.clone()
    for row in range(out.shape[0]):
        for tok in set(input_ids[row].tolist()):
            value = out[row, tok].item()
            out[row, tok] = value / penalty if value > 0 else value * penalty
    return out


def apply_temperature(logits, temperature):
    return logits / temperature


def _filter_row(values, top_k, top_p):
    """values: a list of floats; returns the set of kept positions."""
    n = len(values)
    keep = set(range(n))
    if top_k and top_k > 0 and top_k < n:
        kth = sorted(values, reverse=True)[top_k - 1]
        keep = {i for i in keep if values[i] >= kth}
    if top_p < 1.0:
        m = max(values[i] for i in keep)
        weights = {i: math.exp(values[i] - m) for i in keep}
        total = sum(weights.values())
        order = sorted(keep, key=lambda i: -weights[i])
        kept, mass, i = set(), 0.0, 0
        while i < len(order):
            # a group of tokens with exactly the same probability: all stay or all go
            j = i
            while j < len(order) and weights[order[j]] == weights[order[i]]:
                j += 1
            if kept and mass >= top_p:
                break
            kept.update(order[i:j])
            mass += sum(weights[order[t]] for t in range(i, j)) / total
            i = j
        keep = kept
    return keep


def top_k_top_p_filter(logits, top_k=0, top_p=1.0):
    rows = logits.reshape(-1, logits.shape[-1])
    out = torch.full_like(rows, float("-inf"))
    for r in range(rows.shape[0]):
        values = rows[r].tolist()
        for i in _filter_row(values, top_k, top_p):
            out[r, i] = rows[r, i]
    return out.reshape(logits.shape)


def next_token_probs(logits, input_ids, temperature=1.0, top_k=0, top_p=1.0, repetition_penalty=1.0):
    scores = apply_repetition_penalty(logits, input_ids, repetition_penalty)
    scores = apply_temperature(scores, temperature)
    scores = top_k_top_p_filter(scores, top_k, top_p)
    return torch.softmax(scores, dim=-1)


def greedy_decode(model, input_ids, max_new_tokens):
    with torch.no_grad():
        tokens = input_ids
        for _ in range(max_new_tokens):
            last = model(tokens).logits[:, -1, :]
            best = [max(range(last.shape[1]), key=lambda i: last[r, i].item()) for r in range(last.shape[0])]
            tokens = torch.cat([tokens, torch.tensor(best, dtype=tokens.dtype).unsqueeze(1)], dim=1)
        return tokens


def generate(model, input_ids, max_new_tokens, do_sample=False, temperature=1.0, top_k=0,
             top_p=1.0, repetition_penalty=1.0, use_cache=True, seed=None):
    gen = torch.Generator()
    if seed is not None:
        gen.manual_seed(seed)
    with torch.no_grad():
        tokens = input_ids
        cache = None
        for step in range(max_new_tokens):
            if not use_cache:
                out = model(tokens)
            elif cache is None:
                out = model(tokens, use_cache=True)
            else:
                out = model(tokens[:, -1:], past_key_values=cache, use_cache=True)
            if use_cache:
                cache = out.past_key_values
            logits = out.logits[:, -1, :]
            new = []
            for r in range(tokens.shape[0]):
                if do_sample:
                    p = next_token_probs(logits[r:r + 1], tokens[r:r + 1], temperature, top_k, top_p,
                                         repetition_penalty)
                    new.append(int(torch.multinomial(p[0], 1, generator=gen)))
                else:
                    s = apply_repetition_penalty(logits[r:r + 1], tokens[r:r + 1], repetition_penalty)[0]
                    new.append(int(s.argmax()))
            tokens = torch.cat([tokens, torch.tensor(new, dtype=tokens.dtype).unsqueeze(1)], dim=1)
        return tokens
