"""Assignment: sinusoidal positional encoding and a post-norm transformer encoder block.

Fill in every place marked "YOUR CODE" (and remove the raise statements). Keep the names and
signatures of positional_encoding and EncoderBlock, and the attribute names of the handout's
table (attn.q_proj, attn.k_proj, attn.v_proj, attn.out_proj, norm1, norm2, ff1, ff2): the
grader loads its own weights into your block with load_state_dict().
Save the file as positional_encoding.py and submit it.
"""
import math

import torch
from torch import nn


def positional_encoding(max_len: int, d_model: int) -> torch.Tensor:
    """(max_len, d_model) float32: PE[pos, 2i] = sin(pos / 10000^(2i/d)), PE[pos, 2i+1] = cos(...)."""
    # YOUR CODE
    raise NotImplementedError("positional_encoding")


class SelfAttention(nn.Module):
    """Multi-head self-attention (no cache, no causal mask), as in the previous assignment."""

    def __init__(self, d_model: int, num_heads: int):
        super().__init__()
        # YOUR CODE: q_proj, k_proj, v_proj, out_proj = nn.Linear(d_model, d_model)
        raise NotImplementedError("SelfAttention.__init__")

    def forward(self, x: torch.Tensor, attention_mask=None) -> torch.Tensor:
        """x: (B, T, d_model); attention_mask: None or (B, T) with 1 = real token, 0 = padding."""
        # YOUR CODE
        raise NotImplementedError("SelfAttention.forward")


class EncoderBlock(nn.Module):
    """Post-norm encoder block: h = norm1(x + attn(x)); out = norm2(h + ff2(relu(ff1(h))))."""

    def __init__(self, d_model: int, num_heads: int, d_ff: int, dropout: float = 0.0):
        super().__init__()
        # YOUR CODE: self.attn, self.norm1, self.ff1, self.ff2, self.norm2 (and a dropout layer)
        raise NotImplementedError("EncoderBlock.__init__")

    def forward(self, x: torch.Tensor, attention_mask=None) -> torch.Tensor:
        # YOUR CODE
        raise NotImplementedError("EncoderBlock.forward")


if __name__ == "__main__":
    pe = positional_encoding(3, 4)
    print(pe)  # row 1 should be [0.8415, 0.5403, 0.0100, 0.9999]
    block = EncoderBlock(d_model=32, num_heads=4, d_ff=64).eval()
    x = torch.randn(2, 5, 32) + positional_encoding(5, 32)
    print(block(x).shape, "parameters:", sum(p.numel() for p in block.parameters()))
