"""Trusted driver for the quiz's stable-softmax code question (grader/README.md for the API)."""
import numpy as np

from grader.authoring import Fail, case

FN = "softmax"


def _check(ctx, x, what):
    got = ctx.sub.call(FN, x)
    try:
        got = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        raise Fail(f"{what}: softmax returned {type(got).__name__}, expected a NumPy array") from None
    expected = ctx.ref.softmax(x)
    if got.shape != expected.shape:
        raise Fail(f"{what}: shape {tuple(got.shape)}, expected {tuple(expected.shape)} (same shape as x)")
    if not np.all(np.isfinite(got)):
        raise Fail(f"{what}: the result contains nan or inf (overflow/underflow in exp)",
                   hint="Subtract each row's maximum before np.exp: softmax(x) = softmax(x - max(x)).")
    err = np.max(np.abs(got - expected))
    if err > 1e-9:
        idx = np.unravel_index(np.argmax(np.abs(got - expected)), got.shape)
        raise Fail(f"{what}: wrong values, max error {err:.3g} at index {tuple(int(i) for i in idx)} "
                   f"(got {got[idx]:.6g}, expected {expected[idx]:.6g})",
                   hint="Normalise over the last axis (axis=-1), one row at a time.")


@case(points=1, visible=True)
def small_1d(ctx):
    """a small 1-D vector"""
    _check(ctx, ctx.np_rng.normal(size=5), "1-D input")


@case(points=1, visible=True)
def rows_2d(ctx):
    """a 2-D batch: softmax over the last axis of each row"""
    _check(ctx, ctx.np_rng.normal(scale=3.0, size=(4, 6)), "2-D input")


@case(points=1, visible=True)
def large_values(ctx):
    """rows with very large and very small values stay finite"""
    x = np.array([[1000.0, 1001.0, 999.0], [-1000.0, -1000.5, -1001.0], [0.0, 0.5, -0.5]])
    x = x + ctx.np_rng.normal(scale=0.1, size=x.shape)
    _check(ctx, x, "large/small values")
