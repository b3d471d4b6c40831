"""A second correct solution in the style of "The Annotated Transformer": the frequencies via
exp(-2i * ln(10000) / d) in float32, the attention with F.scaled_dot_product_attention
(allowed in this pack), the feed-forward network written as a method."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def positional_encoding(max_len, d_model):
    pe = torch.zeros(max_len, d_model)
    position = torch.arange(0, max_len).unsqueeze(1).float()
    div_term = torch.exp(torch.arange(0, d_model, 2).float() * -(math.log(10000.0) / d_model))
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term)[:, : d_model // 2]
    return pe


class SelfAttention(nn.Module):
    def __init__(self, d_model, num_heads):
        super().__init__()
        self.h = num_heads
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def forward(self, x, attention_mask=None):
        B, T, D = x.shape
        split = lambda t: t.reshape(B, T, self.h, D // self.h).permute(0, 2, 1, 3)
        mask = None
        if attention_mask is not None:
            mask = attention_mask.bool().view(B, 1, 1, T)
        y = F.scaled_dot_product_attention(split(self.q_proj(x)), split(self.k_proj(x)),
                                           split(self.v_proj(x)), attn_mask=mask)
        return self.out_proj(y.permute(0, 2, 1, 3).reshape(B, T, D))


class EncoderBlock(nn.Module):
    def __init__(self, d_model, num_heads, d_ff, dropout=0.0):
        super().__init__()
        self.attn = SelfAttention(d_model, num_heads)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.ff1 = nn.Linear(d_model, d_ff)
        self.ff2 = nn.Linear(d_ff, d_model)
        self.drop = nn.Dropout(dropout)

    def feed_forward(self, x):
        return self.ff2(F.relu(self.ff1(x)))

    def forward(self, x, attention_mask=None):
        h = self.norm1(x + self.drop(self.attn(x, attention_mask=attention_mask)))
        return self.norm2(h + self.drop(self.feed_forward(h)))
