"""Mutant: top-k/top-p written like the old transformers helper top_k_top_p_filtering, which fills the caller's tensor in place (logits[mask] = -inf) and returns it."""

import torch


@torch.no_grad()
def greedy_decode(model, input_ids, max_new_tokens):
    """Greedy decoding without a cache: the whole sequence goes through the model at each step."""
    seq = input_ids
    for _ in range(max_new_tokens):
        logits = model(seq).logits[:, -1, :]
        next_token = logits.argmax(dim=-1, keepdim=True)
        seq = torch.cat([seq, next_token], dim=-1)
    return seq


def apply_repetition_penalty(logits, input_ids, penalty):
    """CTRL rule: for every token id present in input_ids (per row), divide a positive
    logit by `penalty` and multiply a negative one by it. Each id counts once."""
    if penalty == 1.0:
        return logits.clone()
    picked = torch.gather(logits, -1, input_ids)
    picked = torch.where(picked < 0, picked * penalty, picked / penalty)
    return logits.scatter(-1, input_ids, picked)


def apply_temperature(logits, temperature):
    """Divide the logits by the temperature (before the softmax)."""
    if temperature <= 0:
        raise ValueError("temperature must be > 0")
    return logits / temperature


def top_k_top_p_filter(logits, top_k=0, top_p=1.0):
    """Set filtered logits to -inf. top_k=0 / top_p=1.0 mean "off". Top-k first (ties with the
    k-th value are kept), then top-p on the survivors: keep the smallest set of most likely
    tokens whose probability reaches top_p, including the token that crosses it; at least
    one token is always kept."""
    neg_inf = float("-inf")
    if top_k and top_k > 0:
        k = min(int(top_k), logits.size(-1))
        kth = torch.topk(logits, k, dim=-1).values[..., -1:]
        logits[logits < kth] = neg_inf
    if top_p < 1.0:
        sorted_logits, sorted_idx = torch.sort(logits, dim=-1, descending=False)
        cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        remove_sorted = cumulative <= (1.0 - top_p)
        remove_sorted[..., -1:] = False  # the most likely token always stays
        remove = remove_sorted.scatter(-1, sorted_idx, remove_sorted)
        logits[remove] = neg_inf
    return logits


def next_token_probs(logits, input_ids, temperature=1.0, top_k=0, top_p=1.0, repetition_penalty=1.0):
    """The sampling distribution: repetition penalty, temperature, top-k, top-p, softmax."""
    scores = apply_repetition_penalty(logits, input_ids, repetition_penalty)
    scores = apply_temperature(scores, temperature)
    scores = top_k_top_p_filter(scores, top_k=top_k, top_p=top_p)
    return torch.softmax(scores, dim=-1)


@torch.no_grad()
def generate(model, input_ids, max_new_tokens, do_sample=False, temperature=1.0, top_k=0,
             top_p=1.0, repetition_penalty=1.0, use_cache=True, seed=None):
    """Generate max_new_tokens tokens after input_ids (shape (batch, prompt_len)).

    With use_cache=True the prompt goes through the model once, and then only the newest
    token per step, together with the key/value cache returned by the previous call.
    """
    generator = None
    if do_sample:
        generator = torch.Generator(device=input_ids.device)
        if seed is not None:
            generator.manual_seed(int(seed))
    seq = input_ids
    past = None
    model_input = input_ids
    for _ in range(max_new_tokens):
        if use_cache:
            out = model(model_input, past_key_values=past, use_cache=True)
            past = out.past_key_values
        else:
            out = model(seq)
        logits = out.logits[:, -1, :].float()
        if do_sample:
            probs = next_token_probs(logits, seq, temperature, top_k, top_p, repetition_penalty)
            next_token = torch.multinomial(probs, num_samples=1, generator=generator)
        else:
            scores = apply_repetition_penalty(logits, seq, repetition_penalty)
            next_token = scores.argmax(dim=-1, keepdim=True)
        seq = torch.cat([seq, next_token], dim=-1)
        model_input = next_token
    return seq
