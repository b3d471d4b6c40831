"""Alternative solution: an additive mask of the dtype's most negative value (as Hugging Face models
build their extended attention masks), added to the scaled scores."""
import torch


def scaled_dot_product_attention(q, k, v, mask=None):
    scale = 1.0 / (q.size(-1) ** 0.5)
    scores = torch.matmul(q, k.transpose(-1, -2)) * scale
    if mask is not None:
        additive = (1.0 - mask.to(scores.dtype)) * torch.finfo(scores.dtype).min
        scores = scores + additive
    weights = torch.nn.functional.softmax(scores, dim=-1)
    return torch.matmul(weights, v), weights
