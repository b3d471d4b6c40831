"""Mutant: reaches the library kernel by a computed name the scan cannot see (the sandbox's
dispatcher stub refuses it at run time)."""
import torch

_NS = getattr(torch.ops, "at" + "en")


def scaled_dot_product_attention(q, k, v, mask=None):
    op = _NS.__getattr__("_scaled_dot_product_" + "attention_math")
    out, w = op(q, k, v, attn_mask=mask)
    return out, w
