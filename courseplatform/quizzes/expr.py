"""A small, restricted evaluator for the answer expressions of parameterised questions.

Bank files are instructor content, but they are still evaluated through an AST whitelist
rather than eval(): only numbers, names (the drawn parameters and `let` values), the
functions below, arithmetic (+ - * / // % ** @), comparisons, conditional expressions,
list/tuple literals, indexing/slicing and the `.T` attribute are allowed. Values are
Python numbers or numpy arrays. Student input never reaches this module.
"""
from __future__ import annotations

import ast
from functools import lru_cache
import math
import operator

import numpy as np


class ExpressionError(ValueError):
    pass


def _softmax(x, axis=-1):
    x = np.asarray(x, dtype=float)
    shifted = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / np.sum(e, axis=axis, keepdims=True)


def _log_softmax(x, axis=-1):
    x = np.asarray(x, dtype=float)
    m = np.max(x, axis=axis, keepdims=True)
    return x - m - np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))


def _layer_norm(x, eps=1e-5):
    x = np.asarray(x, dtype=float)
    mu = np.mean(x, axis=-1, keepdims=True)
    var = np.var(x, axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps)


def _array(x):
    return np.asarray(x, dtype=float)


FUNCTIONS = {
    "abs": np.abs, "sqrt": np.sqrt, "exp": np.exp, "log": np.log, "log2": np.log2, "log10": np.log10,
    "sin": np.sin, "cos": np.cos, "tan": np.tan, "tanh": np.tanh, "floor": np.floor, "ceil": np.ceil,
    "round": np.round, "min": np.min, "max": np.max, "sum": np.sum, "mean": np.mean, "prod": np.prod,
    "argmax": np.argmax, "argmin": np.argmin, "len": len, "int": int, "float": float,
    "array": _array, "dot": np.dot, "matmul": np.matmul, "transpose": np.transpose, "outer": np.outer,
    "softmax": _softmax, "log_softmax": _log_softmax, "layer_norm": _layer_norm,
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float))),
    "relu": lambda x: np.maximum(np.asarray(x, dtype=float), 0.0),
    "norm": np.linalg.norm, "var": np.var, "std": np.std, "cumsum": np.cumsum, "comb": math.comb,
}
CONSTANTS = {"pi": math.pi, "e": math.e, "True": True, "False": False}

_BINOPS = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow, ast.MatMult: operator.matmul,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg, ast.Not: operator.not_}
_CMPS = {
    ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.Eq: operator.eq, ast.NotEq: operator.ne,
}
MAX_LEN = 2000


def names_in(source: str) -> set[str]:
    tree = _parse(source)
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}


def _parse(source: str) -> ast.Expression:
    if not isinstance(source, str) or not source.strip():
        raise ExpressionError("empty expression")
    if len(source) > MAX_LEN:
        raise ExpressionError("expression too long")
    return _parse_text(source)


@lru_cache(maxsize=2048)
def _parse_text(source: str) -> ast.Expression:
    """The parsed tree of a bank's expression (cached: every student's start evaluates the same
    expressions with other numbers; the trees are only read, never changed)."""
    try:
        return ast.parse(source.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"syntax error in {source!r}: {exc.msg}") from None


def evaluate(source: str, variables: dict):
    tree = _parse(source)
    env = dict(variables)

    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant):
            if isinstance(node.value, (int, float, bool)):
                return node.value
            raise ExpressionError(f"constant {node.value!r} is not a number")
        if isinstance(node, ast.Name):
            if node.id in env:
                return env[node.id]
            if node.id in CONSTANTS:
                return CONSTANTS[node.id]
            raise ExpressionError(f"unknown name {node.id!r}")
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            left, right = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Pow) and np.any(np.abs(np.asarray(right, dtype=float)) > 1000):
                raise ExpressionError("exponent too large")
            if isinstance(node.op, ast.MatMult):
                left, right = np.asarray(left, dtype=float), np.asarray(right, dtype=float)
            elif isinstance(left, list) or isinstance(right, list):
                left, right = np.asarray(left, dtype=float), np.asarray(right, dtype=float)
            return _BINOPS[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            v = ev(node.operand)
            if isinstance(v, list):
                v = np.asarray(v, dtype=float)
            return _UNARY[type(node.op)](v)
        if isinstance(node, ast.Compare):
            left = ev(node.left)
            for op, comp in zip(node.ops, node.comparators):
                if type(op) not in _CMPS:
                    raise ExpressionError("comparison not allowed")
                right = ev(comp)
                if not _CMPS[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.IfExp):
            return ev(node.body) if ev(node.test) else ev(node.orelse)
        if isinstance(node, ast.BoolOp):
            values = [ev(v) for v in node.values]
            return all(values) if isinstance(node.op, ast.And) else any(values)
        if isinstance(node, (ast.List, ast.Tuple)):
            return [ev(e) for e in node.elts]
        if isinstance(node, ast.Subscript):
            value = ev(node.value)
            index = ev_index(node.slice)
            if isinstance(value, list):
                value = np.asarray(value, dtype=float)
            return value[index]
        if isinstance(node, ast.Attribute):
            if node.attr != "T":
                raise ExpressionError(f"attribute .{node.attr} not allowed (only .T)")
            return np.asarray(ev(node.value), dtype=float).T
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                raise ExpressionError(f"function {ast.unparse(node.func)!r} not allowed")
            args = [ev(a) for a in node.args]
            kwargs = {}
            for kw in node.keywords:
                if kw.arg not in {"axis", "eps", "keepdims", "ord"}:
                    raise ExpressionError(f"keyword {kw.arg!r} not allowed")
                kwargs[kw.arg] = ev(kw.value)
            return FUNCTIONS[node.func.id](*args, **kwargs)
        raise ExpressionError(f"{type(node).__name__} not allowed in an expression")

    def ev_index(node):
        if isinstance(node, ast.Slice):
            return slice(
                ev(node.lower) if node.lower else None,
                ev(node.upper) if node.upper else None,
                ev(node.step) if node.step else None,
            )
        if isinstance(node, ast.Tuple):
            return tuple(ev_index(e) for e in node.elts)
        value = ev(node)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, (np.integer,)):
            value = int(value)
        if not isinstance(value, int):
            raise ExpressionError("index must be an integer")
        return value

    with np.errstate(all="ignore"):
        try:
            return ev(tree)
        except ExpressionError:
            raise
        except Exception as exc:  # numpy shape errors, division by zero, ...
            raise ExpressionError(f"{source!r}: {type(exc).__name__}: {exc}") from None


def evaluate_number(source, variables: dict) -> float:
    if isinstance(source, (int, float)) and not isinstance(source, bool):
        return float(source)
    value = evaluate(source, variables)
    arr = np.asarray(value, dtype=float)
    if arr.size != 1:
        raise ExpressionError(f"{source!r} gives {arr.size} values, not one number")
    number = float(arr.reshape(-1)[0])
    if not math.isfinite(number):
        raise ExpressionError(f"{source!r} is not finite ({number})")
    return number


def to_plain(value):
    """numpy -> JSON-able Python values."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    return value
