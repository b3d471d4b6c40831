"""A second correct solution: einsum everywhere, the cache kept as (keys, values) in the
documented (batch, heads, time, d_head) layout, the causal mask built from position indices."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, num_heads, bias=True):
        super().__init__()
        assert d_model % num_heads == 0
        self.h = num_heads
        self.dk = d_model // num_heads
        for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
            setattr(self, name, nn.Linear(d_model, d_model, bias=bias))

    def heads(self, t):
        # (B, T, D) -> (B, H, T, dk)
        return torch.stack(t.chunk(self.h, dim=-1), dim=1)

    def forward(self, x, causal=False, past_kv=None, use_cache=False):
        q, k, v = self.heads(self.q_proj(x)), self.heads(self.k_proj(x)), self.heads(self.v_proj(x))
        past = 0
        if past_kv is not None:
            pk, pv = past_kv
            past = pk.shape[-2]
            k = torch.cat((pk, k), dim=-2)
            v = torch.cat((pv, v), dim=-2)
        scores = torch.einsum("bhqd,bhkd->bhqk", q, k) * self.dk ** -0.5
        if causal:
            qpos = torch.arange(past, past + x.shape[1], device=x.device)[:, None]
            kpos = torch.arange(k.shape[-2], device=x.device)[None, :]
            scores = torch.where(kpos <= qpos, scores, torch.full_like(scores, float("-inf")))
        attn = F.softmax(scores, dim=-1)
        ctx = torch.einsum("bhqk,bhkd->bhqd", attn, v)
        merged = torch.cat(ctx.unbind(dim=1), dim=-1)  # (B, T, H*dk)
        return self.out_proj(merged), ((k, v) if use_cache else None)
