"""A correct solution that computes the nucleus size with torch.searchsorted on the cumulative
probabilities (softmax first, then sort), keeps tokens whose probability is at least that of the
last token inside the nucleus, and builds every mask with scatter on a boolean tensor; top-k uses
kthvalue on the negated logits. The sampler draws from the global-state-free generator with
torch.multinomial, and the cached loop keeps an explicit position counter for the attention mask."""

import torch


def apply_repetition_penalty(logits, input_ids, penalty):
    present = torch.zeros_like(logits, dtype=torch.bool).scatter(-1, input_ids, True)
    penalised = torch.where(logits > 0, logits / penalty, logits * penalty)
    return torch.where(present, penalised, logits)


def apply_temperature(logits, temperature):
    return torch.div(logits, temperature)


def top_k_top_p_filter(logits, top_k=0, top_p=1.0):
    vocab = logits.shape[-1]
    keep = torch.ones_like(logits, dtype=torch.bool)
    if 0 < top_k < vocab:
        kth = (-logits).kthvalue(top_k, dim=-1, keepdim=True).values.neg()
        keep &= logits >= kth
    if top_p < 1.0:
        probs = torch.softmax(logits.masked_fill(~keep, float("-inf")), dim=-1)
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        cum = sorted_probs.cumsum(dim=-1)
        # number of tokens in the nucleus: the first position whose running total reaches top_p, plus one
        size = torch.searchsorted(cum, torch.full_like(cum[..., :1], top_p)).clamp(max=vocab - 1) + 1
        in_nucleus = torch.arange(vocab).expand_as(cum) < size
        keep &= torch.zeros_like(keep).scatter(-1, order, in_nucleus)
    return logits.masked_fill(~keep, float("-inf"))


def next_token_probs(logits, input_ids, temperature=1.0, top_k=0, top_p=1.0, repetition_penalty=1.0):
    x = apply_temperature(apply_repetition_penalty(logits, input_ids, repetition_penalty), temperature)
    return top_k_top_p_filter(x, top_k, top_p).softmax(-1)


@torch.inference_mode()
def greedy_decode(model, input_ids, max_new_tokens):
    out = input_ids.clone()
    for _ in range(max_new_tokens):
        out = torch.cat([out, model(out).logits[:, -1].argmax(-1)[:, None]], 1)
    return out


@torch.inference_mode()
def generate(model, input_ids, max_new_tokens, do_sample=False, temperature=1.0, top_k=0,
             top_p=1.0, repetition_penalty=1.0, use_cache=True, seed=None):
    rng = torch.Generator()
    rng.manual_seed(0 if seed is None else int(seed))
    seq = input_ids.clone()
    past, fed = None, input_ids
    attention = torch.ones_like(input_ids)
    for _ in range(max_new_tokens):
        if use_cache:
            out = model(input_ids=fed, attention_mask=attention, past_key_values=past, use_cache=True)
            past = out.past_key_values
        else:
            out = model(seq)
        last = out.logits[:, -1].float()
        if do_sample:
            nxt = torch.multinomial(next_token_probs(last, seq, temperature, top_k, top_p, repetition_penalty), 1,
                                    generator=rng)
        else:
            nxt = apply_repetition_penalty(last, seq, repetition_penalty).argmax(-1, keepdim=True)
        seq = torch.cat([seq, nxt], dim=1)
        fed = nxt
        attention = torch.cat([attention, torch.ones_like(nxt)], dim=1)
    return seq
