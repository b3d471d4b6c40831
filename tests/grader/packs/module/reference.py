import torch
from torch import nn


class TinyNet(nn.Module):
    def __init__(self, d=4):
        super().__init__()
        self.lin = nn.Linear(d, d)
        self.scale = 2.0

    def forward(self, x):
        return self.lin(x) * self.scale


def make(d=4):
    return TinyNet(d)
