"""Independent attention: batched baddbmm on flattened leading dimensions, additive -1e30 bias."""
import torch


def scaled_dot_product_attention(q, k, v, mask=None):
    *batch, n_q, dim = q.shape
    n_k = k.shape[-2]
    shape = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    q3 = q.expand(*shape, n_q, dim).reshape(-1, n_q, dim)
    k3 = k.expand(*shape, n_k, dim).reshape(-1, n_k, dim)
    v3 = v.expand(*shape, n_k, v.shape[-1]).reshape(-1, n_k, v.shape[-1])
    bias = torch.zeros(q3.shape[0], n_q, n_k, dtype=q.dtype)
    if mask is not None:
        allowed = torch.broadcast_to(mask, (*shape, n_q, n_k)).reshape(-1, n_q, n_k)
        bias = bias.masked_fill(~allowed, -1e30)
    att = torch.baddbmm(bias, q3, k3.transpose(1, 2), alpha=dim ** -0.5)
    att = att - att.max(dim=-1, keepdim=True).values
    att = att.exp()
    if mask is not None:
        att = att * allowed
    att = att / att.sum(-1, keepdim=True)
    return torch.bmm(att, v3).reshape(*shape, n_q, v.shape[-1]), att.reshape(*shape, n_q, n_k)
