"""Assignment: scaled dot-product attention.

Implement the function below (see the handout). Run this file to try it on a small example.
"""
import math  # noqa: F401  (you will need math.sqrt)

import torch


def scaled_dot_product_attention(q, k, v, mask=None):
    """Return (output, weights) of scaled dot-product attention.

    q: (..., T_q, d_k)   k: (..., T_k, d_k)   v: (..., T_k, d_v)
    mask: optional bool tensor broadcastable to (..., T_q, T_k); True = may attend.
    output: (..., T_q, d_v)   weights: (..., T_q, T_k), each row sums to 1, exactly 0 where masked.
    """
    raise NotImplementedError("scaled_dot_product_attention is not implemented yet")


if __name__ == "__main__":
    q, k, v = torch.randn(3, 4), torch.randn(5, 4), torch.randn(5, 2)
    out, w = scaled_dot_product_attention(q, k, v)
    print(out.shape, w.shape, w.sum(-1))
