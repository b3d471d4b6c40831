"""Mutant: exp/sum softmax without subtracting the maximum (overflows for large logits)."""
import math

import torch


def scaled_dot_product_attention(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    e = torch.exp(scores)
    if mask is not None:
        e = e.masked_fill(~mask, 0.0)
    weights = e / e.sum(dim=-1, keepdim=True)
    return weights @ v, weights
