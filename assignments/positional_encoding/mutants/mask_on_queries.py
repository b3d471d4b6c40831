"""Mutant: the padding mask is put on the query axis (mask[:, None, :, None]) instead of the keys:
real tokens still attend to the padding."""
import torch
import torch.nn as nn


def positional_encoding(max_len, d_model):
    half = (d_model + 1) // 2
    pos = torch.arange(max_len, dtype=torch.float32).unsqueeze(-1)
    inv_freq = 1.0 / (10000 ** (torch.arange(0, 2 * half, 2, dtype=torch.float32) / d_model))
    angles = pos * inv_freq                                      # (max_len, half)
    pe = torch.stack([angles.sin(), angles.cos()], dim=-1).reshape(max_len, 2 * half)
    return pe[:, :d_model].contiguous()


class Attention(nn.Module):
    def __init__(self, d_model, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def forward(self, hidden_states, attention_mask=None):
        B, T, D = hidden_states.shape
        H = self.num_heads
        q = self.q_proj(hidden_states).view(B, T, H, D // H)
        k = self.k_proj(hidden_states).view(B, T, H, D // H)
        v = self.v_proj(hidden_states).view(B, T, H, D // H)
        scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / (D // H) ** 0.5
        if attention_mask is not None:
            extended = attention_mask[:, None, :, None].to(scores.dtype)
            scores = scores + (1.0 - extended) * torch.finfo(scores.dtype).min
        probs = scores.softmax(dim=-1)
        context = torch.einsum("bhqk,bkhd->bqhd", probs, v).reshape(B, T, D)
        return self.out_proj(context)


class EncoderBlock(nn.Module):
    def __init__(self, d_model, num_heads, d_ff, dropout=0.0):
        super().__init__()
        self.attn = Attention(d_model, num_heads)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.ff1 = nn.Linear(d_model, d_ff)
        self.ff2 = nn.Linear(d_ff, d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, attention_mask=None):
        x = self.norm1(x + self.drop(self.attn(x, attention_mask)))
        return self.norm2(x + self.drop(self.ff2(nn.functional.relu(self.ff1(x)))))
