"""Independent attention: softmax through logsumexp, mask applied with torch.where on the log-weights."""
import torch


def scaled_dot_product_attention(q, k, v, mask=None):
    logits = torch.matmul(q, k.transpose(-1, -2)) / (k.shape[-1] ** 0.5)
    if mask is not None:
        logits = torch.where(mask, logits, torch.full_like(logits, float("-inf")))
    log_w = logits - torch.logsumexp(logits, dim=-1, keepdim=True)
    probs = torch.exp(log_w)
    probs = torch.nan_to_num(probs, nan=0.0)
    return torch.matmul(probs, v), probs
