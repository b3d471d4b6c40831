#!/usr/bin/env python
# coding: utf-8

# # Attention

# In[1]:


get_ipython().run_line_magic('matplotlib', 'inline')
get_ipython().system('pip install torch')
get_ipython().run_line_magic('load_ext', 'autoreload')


# In[3]:


import math
import torch


def scaled_dot_product_attention(q, k, v, mask=None):
    """softmax(q k^T / sqrt(d_k)) v over any leading dimensions; mask: True = may attend."""
    d_k = q.size(-1)
    scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(d_k)
    if mask is not None:
        scores = scores.masked_fill(mask == False, float("-inf"))  # noqa: E712
    weights = scores.softmax(dim=-1)
    if mask is not None:
        weights = weights.masked_fill(mask == False, 0.0)  # noqa: E712
    return torch.matmul(weights, v), weights


# In[2]:


files = get_ipython().getoutput('ls')
get_ipython().run_cell_magic('bash', '', 'nvidia-smi\n')
display(len(files))
