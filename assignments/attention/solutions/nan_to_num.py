"""Alternative solution: masked_fill with -inf, then nan_to_num (so a fully masked row would give
zeros instead of NaN), with the scaled scores computed through baddbmm-free matmul on flattened heads."""
import math

import torch


def scaled_dot_product_attention(q, k, v, mask=None):
    *lead_q, tq, dk = q.shape
    lead = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    qf = q.expand(*lead, tq, dk).reshape(-1, tq, dk)
    kf = k.expand(*lead, *k.shape[-2:]).reshape(-1, *k.shape[-2:])
    vf = v.expand(*lead, *v.shape[-2:]).reshape(-1, *v.shape[-2:])
    scores = torch.bmm(qf, kf.transpose(1, 2)).div(math.sqrt(dk)).reshape(*lead, tq, kf.shape[1])
    if mask is not None:
        scores = scores.masked_fill(torch.logical_not(mask), float("-inf"))
    weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)
    out = torch.bmm(weights.reshape(-1, tq, kf.shape[1]), vf).reshape(*weights.shape[:-1], vf.shape[-1])
    return out, weights
