"""Mutant: the causal mask ignores the cached length (query i sees keys j <= i, not j <= P + i).
Full passes are right; every decoding step with a cache is not."""
import math

import torch
from torch import nn


class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, num_heads, bias=True):
        super().__init__()
        self.h, self.dh = num_heads, d_model // num_heads
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_model, d_model, bias=bias)
        self.v_proj = nn.Linear(d_model, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)

    def forward(self, x, causal=False, past_kv=None, use_cache=False):
        b, t, d = x.shape
        split = lambda z: z.view(b, t, self.h, self.dh).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))
        if past_kv is not None:
            k = torch.cat([past_kv[0], k], dim=2)
            v = torch.cat([past_kv[1], v], dim=2)
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.dh)
        if causal:
            mask = torch.tril(torch.ones(t, k.shape[2], dtype=torch.bool))
            scores = scores.masked_fill(~mask, float("-inf"))
        out = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, d)
        return self.out_proj(out), ((k, v) if use_cache else None)
