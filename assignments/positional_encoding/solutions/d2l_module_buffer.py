"""Correct solution in the style of Dive into Deep Learning (d2l): a PositionalEncoding module that
precomputes P with torch.pow in float32 and registers it as a buffer (adapted for an odd d_model),
and an encoder block with a d2l-style PositionWiseFFN method and AddNorm written inline."""
import math

import torch
from torch import nn


class PositionalEncoding(nn.Module):
    """Positional encoding (d2l 11.6), without the dropout."""

    def __init__(self, num_hiddens, max_len=1000):
        super().__init__()
        P = torch.zeros((1, max_len, num_hiddens))
        X = torch.arange(max_len, dtype=torch.float32).reshape(-1, 1) / torch.pow(
            10000, torch.arange(0, num_hiddens, 2, dtype=torch.float32) / num_hiddens)
        P[:, :, 0::2] = torch.sin(X)
        P[:, :, 1::2] = torch.cos(X[:, : num_hiddens // 2])
        self.register_buffer("P", P, persistent=False)

    def forward(self, X):
        return X + self.P[:, : X.shape[1], :].to(X.device)


def positional_encoding(max_len, d_model):
    return PositionalEncoding(d_model, max_len).P[0].clone()


def masked_softmax(X, valid):
    """Softmax over the last axis where `valid` (broadcastable, bool) is True; elsewhere -1e6 as in d2l."""
    if valid is None:
        return nn.functional.softmax(X, dim=-1)
    return nn.functional.softmax(X.masked_fill(~valid, -1e6), dim=-1)


class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def transpose_qkv(self, X):
        X = X.reshape(X.shape[0], X.shape[1], self.num_heads, -1).permute(0, 2, 1, 3)
        return X.reshape(-1, X.shape[2], X.shape[3])

    def transpose_output(self, X):
        X = X.reshape(-1, self.num_heads, X.shape[1], X.shape[2]).permute(0, 2, 1, 3)
        return X.reshape(X.shape[0], X.shape[1], -1)

    def forward(self, X, attention_mask=None):
        q, k, v = self.transpose_qkv(self.q_proj(X)), self.transpose_qkv(self.k_proj(X)), self.transpose_qkv(self.v_proj(X))
        scores = torch.bmm(q, k.transpose(1, 2)) / math.sqrt(q.shape[-1])
        valid = None
        if attention_mask is not None:
            valid = attention_mask.bool().repeat_interleave(self.num_heads, dim=0)[:, None, :]
        out = torch.bmm(masked_softmax(scores, valid), v)
        return self.out_proj(self.transpose_output(out))


class EncoderBlock(nn.Module):
    def __init__(self, d_model, num_heads, d_ff, dropout=0.0):
        super().__init__()
        self.attn = MultiHeadAttention(d_model, num_heads)
        self.norm1 = nn.LayerNorm(d_model)
        self.ff1 = nn.Linear(d_model, d_ff)
        self.ff2 = nn.Linear(d_ff, d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def ffn(self, X):
        return self.ff2(torch.relu(self.ff1(X)))

    def forward(self, X, attention_mask=None):
        Y = self.norm1(self.dropout(self.attn(X, attention_mask)) + X)
        return self.norm2(self.dropout(self.ffn(Y)) + Y)
