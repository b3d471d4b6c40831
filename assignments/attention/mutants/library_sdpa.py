"""Mutant: calls the library kernel through torch.ops.aten (refused by the [forbid] source scan)."""
import torch


def scaled_dot_product_attention(q, k, v, mask=None):
    out, w = torch.ops.aten._scaled_dot_product_attention_math(q, k, v, attn_mask=mask)
    return out, w
