"""Trusted reference for the attention pack (never visible to students or the sandbox)."""
import math

import torch


def scaled_dot_product_attention(q, k, v, mask=None):
    d_k = q.shape[-1]
    scores = q @ k.transpose(-2, -1) / math.sqrt(d_k)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    if mask is not None:
        # exact zeros where masked; a fully masked row (not graded) becomes all zeros instead of NaN
        weights = weights.masked_fill(~mask, 0.0)
    return weights @ v, weights
