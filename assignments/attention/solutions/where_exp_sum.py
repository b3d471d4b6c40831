"""Alternative solution: a hand-written stable softmax with torch.where on the exponentials
(masked entries are exactly 0 without any -inf), in the computation's own float64."""
import torch


def scaled_dot_product_attention(q, k, v, mask=None):
    scores = (q.double() @ k.double().transpose(-2, -1)) / q.shape[-1] ** 0.5
    if mask is not None:
        scores = torch.where(mask, scores, scores.new_tensor(-float("inf")))
    m = scores.max(dim=-1, keepdim=True).values
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    e = torch.exp(scores - m)
    weights = e / e.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(torch.float64).tiny)
    return (weights @ v.double()).to(q.dtype), weights.to(q.dtype)
