"""Mutant: heads split by viewing (B, T, D) directly as (B, H, T, d_head), which mixes time steps and features."""
from __future__ import annotations

import math

import torch
from torch import nn


class MultiHeadAttention(nn.Module):
    def __init__(self, d_model: int, num_heads: int, bias: bool = True):
        super().__init__()
        if d_model % num_heads != 0:
            raise ValueError(f"d_model={d_model} is not divisible by num_heads={num_heads}")
        self.d_model = d_model
        self.num_heads = num_heads
        self.d_head = d_model // num_heads
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_model, d_model, bias=bias)
        self.v_proj = nn.Linear(d_model, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)

    def _split(self, t: torch.Tensor) -> torch.Tensor:
        b, n, _ = t.shape
        return t.view(b, self.num_heads, n, self.d_head)

    def forward(self, x, causal=False, past_kv=None, use_cache=False):
        b, t, _ = x.shape
        q = self._split(self.q_proj(x))
        k = self._split(self.k_proj(x))
        v = self._split(self.v_proj(x))
        if past_kv is not None:
            k = torch.cat([past_kv[0], k], dim=2)
            v = torch.cat([past_kv[1], v], dim=2)
        s = k.shape[2]
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.d_head)
        if causal:
            offset = s - t
            allowed = torch.ones(t, s, dtype=torch.bool, device=x.device).tril(diagonal=offset)
            scores = scores.masked_fill(~allowed, float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        out = (weights @ v).transpose(1, 2).reshape(b, t, self.d_model)
        out = self.out_proj(out)
        return out, ((k, v) if use_cache else None)
