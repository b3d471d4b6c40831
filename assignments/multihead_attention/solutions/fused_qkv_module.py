"""Correct solution with the d2l / Annotated-Transformer structure: one helper that runs the three
projections in a single matmul (the stacked q/k/v weights, as nn.MultiheadAttention's in_proj stores
them), heads folded into the batch axis (B*H, T, d_head), an additive -inf mask, and the cache kept
in the handout's (B, H, T, d_head) layout."""
import math

import torch
from torch import nn


def transpose_qkv(x, num_heads):
    """(B, T, d) -> (B*H, T, d/H), as d2l's transpose_qkv."""
    x = x.reshape(x.shape[0], x.shape[1], num_heads, -1).permute(0, 2, 1, 3)
    return x.reshape(-1, x.shape[2], x.shape[3])


def transpose_output(x, num_heads):
    """(B*H, T, d/H) -> (B, T, d), the inverse of transpose_qkv."""
    x = x.reshape(-1, num_heads, x.shape[1], x.shape[2]).permute(0, 2, 1, 3)
    return x.reshape(x.shape[0], x.shape[1], -1)


class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, num_heads, bias=True):
        super().__init__()
        if d_model % num_heads:
            raise ValueError("d_model must be divisible by num_heads")
        self.num_heads = num_heads
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_model, d_model, bias=bias)
        self.v_proj = nn.Linear(d_model, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)

    def _qkv(self, x):
        w = torch.cat([self.q_proj.weight, self.k_proj.weight, self.v_proj.weight], dim=0)
        b = None if self.q_proj.bias is None else torch.cat([self.q_proj.bias, self.k_proj.bias, self.v_proj.bias])
        return nn.functional.linear(x, w, b).chunk(3, dim=-1)

    def forward(self, x, causal=False, past_kv=None, use_cache=False):
        B, T, _ = x.shape
        H = self.num_heads
        q, k, v = (transpose_qkv(z, H) for z in self._qkv(x))
        if past_kv is not None:
            pk, pv = (p.reshape(B * H, p.shape[2], p.shape[3]) for p in past_kv)
            k, v = torch.cat([pk, k], dim=1), torch.cat([pv, v], dim=1)
        S = k.shape[1]
        scores = torch.bmm(q, k.transpose(1, 2)) / math.sqrt(q.shape[-1])
        if causal:
            future = torch.arange(S)[None, :] > torch.arange(S - T, S)[:, None]
            scores = scores + torch.zeros(T, S, dtype=scores.dtype).masked_fill(future, float("-inf"))
        out = transpose_output(torch.bmm(torch.softmax(scores, dim=-1), v), H)
        present = None
        if use_cache:
            present = (k.reshape(B, H, S, -1), v.reshape(B, H, S, -1))
        return self.out_proj(out), present
