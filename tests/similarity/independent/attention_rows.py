"""Independent attention: one query row at a time with unbind/stack, softmax from torch.nn.functional."""
import math

import torch
import torch.nn.functional as F


def _row(query, keys, values, allowed):
    s = (keys * query).sum(dim=-1) / math.sqrt(query.numel())
    if allowed is not None:
        s = s.masked_fill(allowed.logical_not(), -math.inf)
    p = F.softmax(s, dim=0)
    if allowed is not None:
        p = p * allowed
    return p @ values, p


def scaled_dot_product_attention(q, k, v, mask=None):
    lead = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    qs = q.expand(*lead, *q.shape[-2:]).reshape(-1, *q.shape[-2:])
    ks = k.expand(*lead, *k.shape[-2:]).reshape(-1, *k.shape[-2:])
    vs = v.expand(*lead, *v.shape[-2:]).reshape(-1, *v.shape[-2:])
    ms = None
    if mask is not None:
        ms = mask.expand(*lead, q.shape[-2], k.shape[-2]).reshape(-1, q.shape[-2], k.shape[-2])
    outputs, weights = [], []
    for b, (qq, kk, vv) in enumerate(zip(qs.unbind(0), ks.unbind(0), vs.unbind(0))):
        rows = [_row(qq[i], kk, vv, None if ms is None else ms[b, i]) for i in range(qq.shape[0])]
        outputs.append(torch.stack([o for o, _ in rows]))
        weights.append(torch.stack([w for _, w in rows]))
    out = torch.stack(outputs).reshape(*lead, q.shape[-2], v.shape[-1])
    return out, torch.stack(weights).reshape(*lead, q.shape[-2], k.shape[-2])
