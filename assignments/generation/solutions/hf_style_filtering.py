"""A correct solution adapted from the helper many tutorials copy, transformers' old
`top_k_top_p_filtering(logits, top_k, top_p, filter_value, min_tokens_to_keep)` (sort-based
nucleus filtering with a right-shifted mask): the student defines a function with that very name
(their own, so it is allowed) and fixes the two things the original does not do here: it works on
a copy (the original fills the caller's tensor in place) and along the last dimension (the
original scatters along dim 1, which breaks 1-D and 3-D logits)."""

import torch
import torch.nn.functional as F


def top_k_top_p_filtering(logits, top_k=0, top_p=1.0, filter_value=-float("Inf"), min_tokens_to_keep=1):
    logits = logits.clone()
    if top_k > 0:
        top_k = min(max(top_k, min_tokens_to_keep), logits.size(-1))
        indices_to_remove = logits < torch.topk(logits, top_k)[0][..., -1, None]
        logits[indices_to_remove] = filter_value
    if top_p < 1.0:
        sorted_logits, sorted_indices = torch.sort(logits, descending=True)
        cumulative_probs = torch.cumsum(F.softmax(sorted_logits, dim=-1), dim=-1)
        sorted_indices_to_remove = cumulative_probs > top_p
        if min_tokens_to_keep > 1:
            sorted_indices_to_remove[..., :min_tokens_to_keep] = 0
        sorted_indices_to_remove[..., 1:] = sorted_indices_to_remove[..., :-1].clone()
        sorted_indices_to_remove[..., 0] = 0
        indices_to_remove = sorted_indices_to_remove.scatter(-1, sorted_indices, sorted_indices_to_remove)
        logits[indices_to_remove] = filter_value
    return logits


def top_k_top_p_filter(logits, top_k=0, top_p=1.0):
    return top_k_top_p_filtering(logits, top_k=top_k, top_p=top_p)


def apply_repetition_penalty(logits, input_ids, penalty):
    score = torch.gather(logits, 1, input_ids)
    score = torch.where(score < 0, score * penalty, score / penalty)
    return logits.scatter(1, input_ids, score)


def apply_temperature(logits, temperature):
    return logits / temperature


def next_token_probs(logits, input_ids, temperature=1.0, top_k=0, top_p=1.0, repetition_penalty=1.0):
    logits = apply_repetition_penalty(logits, input_ids, repetition_penalty)
    logits = apply_temperature(logits, temperature)
    return F.softmax(top_k_top_p_filtering(logits, top_k=top_k, top_p=top_p), dim=-1)


@torch.no_grad()
def greedy_decode(model, input_ids, max_new_tokens):
    generated = input_ids
    for _ in range(max_new_tokens):
        next_token_logits = model(generated).logits[:, -1, :]
        generated = torch.cat((generated, torch.argmax(next_token_logits, dim=-1).unsqueeze(-1)), dim=1)
    return generated


@torch.no_grad()
def generate(model, input_ids, max_new_tokens, do_sample=False, temperature=1.0, top_k=0,
             top_p=1.0, repetition_penalty=1.0, use_cache=True, seed=None):
    g = torch.Generator()
    if seed is not None:
        g.manual_seed(seed)
    generated = input_ids
    past_key_values = None
    for _ in range(max_new_tokens):
        if use_cache and past_key_values is not None:
            outputs = model(generated[:, -1:], past_key_values=past_key_values, use_cache=True)
        else:
            outputs = model(generated, use_cache=use_cache)
        if use_cache:
            past_key_values = outputs.past_key_values
        next_token_logits = outputs.logits[:, -1, :]
        if do_sample:
            probs = next_token_probs(next_token_logits, generated, temperature, top_k, top_p, repetition_penalty)
            next_token = torch.multinomial(probs, num_samples=1, generator=g)
        else:
            next_token = apply_repetition_penalty(next_token_logits, generated, repetition_penalty).argmax(-1, keepdim=True)
        generated = torch.cat((generated, next_token), dim=1)
    return generated
