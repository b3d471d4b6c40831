"""Correct solution: the encoding with explicit Python loops over positions and pairs in float64
(math.pow, as textbooks write the formula), then float32; the block with Annotated-Transformer-style
masked_fill(mask == 0, -1e9) and per-head loops."""
import math

import numpy as np
import torch
from torch import nn


def positional_encoding(max_len, d_model):
    pe = np.zeros((max_len, d_model))
    for pos in range(max_len):
        for i in range(0, d_model, 2):
            angle = pos / math.pow(10000, i / d_model)
            pe[pos, i] = math.sin(angle)
            if i + 1 < d_model:
                pe[pos, i + 1] = math.cos(angle)
    return torch.from_numpy(pe).float()


class MultiHeadSelfAttention(nn.Module):
    def __init__(self, d_model, num_heads):
        super().__init__()
        self.h = num_heads
        self.d_k = d_model // num_heads
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def forward(self, x, mask=None):
        q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        heads = []
        for i in range(self.h):
            sl = slice(i * self.d_k, (i + 1) * self.d_k)
            scores = torch.matmul(q[..., sl], k[..., sl].transpose(-2, -1)) / math.sqrt(self.d_k)
            if mask is not None:
                scores = scores.masked_fill(mask.unsqueeze(1) == 0, -1e9)
            heads.append(torch.matmul(scores.softmax(dim=-1), v[..., sl]))
        return self.out_proj(torch.cat(heads, dim=-1))


class EncoderBlock(nn.Module):
    def __init__(self, d_model, num_heads, d_ff, dropout=0.0):
        super().__init__()
        self.attn = MultiHeadSelfAttention(d_model, num_heads)
        self.ff1 = nn.Linear(d_model, d_ff)
        self.ff2 = nn.Linear(d_ff, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(self, x, attention_mask=None):
        x = self.norm1(x + self.dropout1(self.attn(x, attention_mask)))
        x = self.norm2(x + self.dropout2(self.ff2(torch.relu(self.ff1(x)))))
        return x
