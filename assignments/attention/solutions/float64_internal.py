"""Alternative solution: computes in float64 internally, returns the input dtype."""
import math

import torch


def scaled_dot_product_attention(q, k, v, mask=None):
    dtype = q.dtype
    q, k, v = q.double(), k.double(), v.double()
    scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(k.size(-1))
    if mask is not None:
        scores = scores.masked_fill(mask.logical_not(), -math.inf)
    scores = scores - scores.amax(dim=-1, keepdim=True).clamp_min(-1e300)
    e = scores.exp()
    weights = e / e.sum(dim=-1, keepdim=True)
    return (weights @ v).to(dtype), weights.to(dtype)
