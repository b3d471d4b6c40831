"""Assignment: multi-head attention with a key/value cache.

Fill in every place marked "YOUR CODE" (and remove the raise statements). Keep the class
name, the attribute names (q_proj, k_proj, v_proj, out_proj) and the forward() signature
exactly as the handout specifies: the grader loads its own weights into your module with
load_state_dict(). Save the file as multihead_attention.py and submit it.
"""
import math

import torch
from torch import nn


class MultiHeadAttention(nn.Module):
    def __init__(self, d_model: int, num_heads: int, bias: bool = True):
        super().__init__()
        self.d_model = d_model
        self.num_heads = num_heads
        self.d_head = d_model // num_heads
        # YOUR CODE: the four projections q_proj, k_proj, v_proj, out_proj, each an
        # nn.Linear(d_model, d_model, bias=bias). Use exactly these names and nothing else
        # with parameters (the grader loads its weights with load_state_dict).
        raise NotImplementedError("__init__: create q_proj, k_proj, v_proj and out_proj")

    def split_heads(self, t: torch.Tensor) -> torch.Tensor:
        """(batch, time, d_model) -> (batch, num_heads, time, d_head)."""
        # YOUR CODE
        raise NotImplementedError("split_heads")

    def merge_heads(self, t: torch.Tensor) -> torch.Tensor:
        """(batch, num_heads, time, d_head) -> (batch, time, d_model)."""
        # YOUR CODE
        raise NotImplementedError("merge_heads")

    def forward(self, x, causal=False, past_kv=None, use_cache=False):
        """x: (batch, time, d_model).

        causal:    if True, position i may only attend to positions <= i (counting the
                   cached positions in past_kv first).
        past_kv:   None, or a tuple (past_keys, past_values), each of shape
                   (batch, num_heads, past_time, d_head), as returned by an earlier call.
        use_cache: if True, also return the keys/values of all positions so far.

        Returns (out, present_kv): out has shape (batch, time, d_model); present_kv is
        (keys, values), each (batch, num_heads, past_time + time, d_head), if use_cache
        is True, else None.
        """
        # YOUR CODE
        raise NotImplementedError("forward")


if __name__ == "__main__":
    # A quick self-check: cached token-by-token decoding must equal one causal pass.
    torch.manual_seed(0)
    mha = MultiHeadAttention(d_model=32, num_heads=4).eval()
    x = torch.randn(2, 6, 32)
    full, _ = mha(x, causal=True)
    past, steps = None, []
    for t in range(x.shape[1]):
        y, past = mha(x[:, t:t + 1], causal=True, past_kv=past, use_cache=True)
        steps.append(y)
    print("max difference cached vs full:", (torch.cat(steps, dim=1) - full).abs().max().item())
    print("parameters:", sum(p.numel() for p in mha.parameters()), "expected", 4 * 32 * 32 + 4 * 32)
