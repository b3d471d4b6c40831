"""Alternative solution: explicit Python loops over rows with a hand-written stable softmax."""
import math

import torch


def _attend(q, k, v, mask):
    tq, tk = q.shape[0], k.shape[0]
    weights = torch.zeros(tq, tk, dtype=q.dtype)
    out = torch.zeros(tq, v.shape[1], dtype=q.dtype)
    for i in range(tq):
        allowed = [j for j in range(tk) if mask is None or bool(mask[i, j])]
        scores = [float((q[i] * k[j]).sum()) / math.sqrt(q.shape[1]) for j in allowed]
        if not scores:
            continue
        top = max(scores)
        exps = [math.exp(s - top) for s in scores]
        total = sum(exps)
        for j, e in zip(allowed, exps):
            weights[i, j] = e / total
            out[i] += weights[i, j] * v[j]
    return out, weights


def scaled_dot_product_attention(q, k, v, mask=None):
    lead = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    tq, tk = q.shape[-2], k.shape[-2]
    if mask is not None:
        lead = torch.broadcast_shapes(lead, mask.shape[:-2]) if mask.dim() > 2 else lead
        mask = torch.broadcast_to(mask, lead + (tq, tk))
    qb = torch.broadcast_to(q, lead + q.shape[-2:]).reshape(-1, tq, q.shape[-1])
    kb = torch.broadcast_to(k, lead + k.shape[-2:]).reshape(-1, tk, k.shape[-1])
    vb = torch.broadcast_to(v, lead + v.shape[-2:]).reshape(-1, tk, v.shape[-1])
    mb = None if mask is None else mask.reshape(-1, tq, tk)
    outs, ws = [], []
    for b in range(qb.shape[0]):
        o, w = _attend(qb[b], kb[b], vb[b], None if mb is None else mb[b])
        outs.append(o)
        ws.append(w)
    out = torch.stack(outs).reshape(lead + (tq, v.shape[-1]))
    weights = torch.stack(ws).reshape(lead + (tq, tk))
    return out, weights
