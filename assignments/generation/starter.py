"""Assignment: decoding strategies for a causal language model.

Fill in every function marked TODO. The grader imports this file as `generation` and calls the
functions directly; do not rename them or change their signatures. Read handout.md first.

Allowed: torch, math. Not allowed: transformers' generation utilities (model.generate,
LogitsProcessor classes, GenerationMixin) -- you are writing them yourself. You may call the
model's forward pass: `model(input_ids)` and `model(input_ids, past_key_values=..., use_cache=True)`.

To try your code locally, run `python starter.py`: it builds the same kind of small GPT-2 the
grader uses (random weights, 256-token byte vocabulary, nothing downloaded).
"""

import torch


def greedy_decode(model, input_ids, max_new_tokens):
    """Greedy decoding WITHOUT a cache.

    input_ids: LongTensor (batch, prompt_len). At each of max_new_tokens steps, run the model on
    the whole sequence, take the logits of the last position, append the argmax.
    Returns a LongTensor (batch, prompt_len + max_new_tokens) that starts with input_ids.
    """
    # TODO
    return input_ids.clone()


def apply_repetition_penalty(logits, input_ids, penalty):
    """logits: (batch, vocab); input_ids: (batch, seq_len) = the tokens so far.

    For every token id that occurs in a row of input_ids, divide its logit by `penalty` if the
    logit is positive and multiply it by `penalty` if it is negative. Return a new tensor.
    """
    # TODO
    return torch.zeros_like(logits)


def apply_temperature(logits, temperature):
    """Scale logits by the temperature (temperature > 0). Return a new tensor."""
    # TODO
    return torch.zeros_like(logits)


def top_k_top_p_filter(logits, top_k=0, top_p=1.0):
    """Set the logits of filtered tokens to -inf (logits: (..., vocab)).

    top_k > 0: keep only the top_k largest logits (top_k=0: no top-k filtering).
    top_p < 1: then keep the smallest set of most likely tokens whose cumulative probability
    reaches top_p, INCLUDING the token that crosses top_p (top_p=1.0: no filtering).
    At least one token is always kept. Return a new tensor.
    """
    # TODO
    return torch.full_like(logits, float("-inf"))


def next_token_probs(logits, input_ids, temperature=1.0, top_k=0, top_p=1.0, repetition_penalty=1.0):
    """The distribution to sample the next token from: (batch, vocab), rows sum to 1.

    Order: repetition penalty, temperature, top-k, top-p, softmax.
    """
    # TODO
    return torch.zeros_like(logits)


def generate(model, input_ids, max_new_tokens, do_sample=False, temperature=1.0, top_k=0,
             top_p=1.0, repetition_penalty=1.0, use_cache=True, seed=None):
    """Generate max_new_tokens tokens after input_ids; return (batch, prompt_len + max_new_tokens).

    do_sample=False: greedy on the repetition-penalised logits.
    do_sample=True: draw from next_token_probs(...) with torch.multinomial and a torch.Generator
    seeded with `seed`.
    use_cache=True: run the prompt once, then feed only the newest token together with the
    key/value cache (out.past_key_values) returned by the previous call.
    """
    # TODO
    return input_ids.clone()


if __name__ == "__main__":
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(2024)
    config = GPT2Config(vocab_size=256, n_positions=256, n_embd=64, n_layer=2, n_head=4,
                        n_inner=256, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                        initializer_range=0.2, bos_token_id=0, eos_token_id=0)
    model = GPT2LMHeadModel(config).eval()
    prompt = torch.tensor([list(b"Hello")])
    print("greedy :", greedy_decode(model, prompt, 10).tolist())
    print("cached :", generate(model, prompt, 10).tolist())
    print("sampled:", generate(model, prompt, 10, do_sample=True, top_k=20, top_p=0.9, seed=0).tolist())
