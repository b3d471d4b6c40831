"""The attention pack, graded through grader.api.grade with the real sandbox: its [forbid] policy
(issue 10, class 9: the library attention kernels are refused however they are reached, a self-check
against the library under __main__ is fine, the student's own function of the same name is theirs),
and hints that name a mistake only when the output is what that mistake gives (issue 16).

The reference / starter / mutants / solutions sweep is tests/packs/test_packs_generic.py's."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch

from grader.api import grade
from grader.authoring import Fail, compare

PACK = Path(__file__).resolve().parents[2] / "assignments" / "attention"
REFERENCE = (PACK / "reference.py").read_text()
FULL = 10.0
REFUSED = "which this assignment does not allow"
STUB = "is not allowed in this assignment"


def _grade(source: str, filename: str = "attention.py") -> dict:
    res = grade(PACK, filename, source.encode())
    assert res["max_score"] == FULL
    return res


def _feedback(res: dict) -> str:
    return "\n".join([res["message"]] + [t["message"] for t in res["tests"]])


def _wrapped(body: str, header: str = "import torch\n") -> str:
    """A submission whose function returns whatever `body` computes from q, k, v, mask."""
    return header + "\n\ndef scaled_dot_product_attention(q, k, v, mask=None):\n" + textwrap.indent(body, "    ")


# ---------------------------------------------------------------- the student's own name is theirs

def test_reference_with_a_library_self_check_under_main_gets_full_marks():
    src = REFERENCE + textwrap.dedent('''

        if __name__ == "__main__":
            import torch.nn.functional as F
            q, k, v = torch.randn(2, 4, 5, 8), torch.randn(2, 4, 7, 8), torch.randn(2, 4, 7, 3)
            causal = torch.tril(torch.ones(5, 7, dtype=torch.bool))
            out, w = scaled_dot_product_attention(q, k, v, mask=causal)
            ref = F.scaled_dot_product_attention(q, k, v, attn_mask=causal)
            print(torch.allclose(out, ref, atol=1e-6))
            print(torch.ops.aten._scaled_dot_product_attention_math(q, k, v)[0].shape)
        ''')
    res = _grade(src)
    assert res["score"] == FULL, _feedback(res)


def test_own_helpers_named_like_library_functions_are_allowed():
    src = textwrap.dedent('''
        import math
        import torch


        class MultiheadAttention:                       # their own class, a library name
            def scaled_dot_product_attention(self, q, k, v, mask=None):
                s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
                if mask is not None:
                    s = s.masked_fill(~mask, float("-inf"))
                w = torch.softmax(s, dim=-1)
                return w @ v, w


        _impl = MultiheadAttention()
        __all__ = ["scaled_dot_product_attention"]


        def scaled_dot_product_attention(q, k, v, mask=None):
            return _impl.scaled_dot_product_attention(q, k, v, mask)
        ''')
    res = _grade(src)
    assert res["score"] == FULL, _feedback(res)


# ---------------------------------------------------------------- the library's kernels are refused

@pytest.mark.parametrize("header, body, label", [
    ("import torch.nn.functional as F\n",
     "out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)\nreturn out, out", "scaled_dot_product_attention"),
    ("from torch.nn.functional import scaled_dot_product_attention as sdpa\n",
     "out = sdpa(q, k, v, attn_mask=mask)\nreturn out, out", "scaled_dot_product_attention"),
    ("import torch\n", "return torch.ops.aten._scaled_dot_product_attention_math(q, k, v, attn_mask=mask)",
     "_scaled_dot_product_attention_math"),
    ("import torch\n", "return torch._scaled_dot_product_attention_math(q, k, v, attn_mask=mask)",
     "_scaled_dot_product_attention_math"),
    ("import torch\n", "return torch._C._nn.scaled_dot_product_attention(q, k, v, attn_mask=mask), None",
     "scaled_dot_product_attention"),
    ("import torch\n", "m = torch.nn.MultiheadAttention(q.shape[-1], 1)\nreturn m(q, k, v)", "MultiheadAttention"),
    ("import torch\n", "return getattr(torch.ops.aten, '_scaled_dot_product_flash_attention_for_cpu')(q, k, v)",
     "_scaled_dot_product_flash_attention_for_cpu"),
])
def test_static_library_use_is_refused_before_running(header, body, label):
    res = _grade(_wrapped(body, header))
    assert res["score"] == 0.0 and res["output"] == ""
    assert f"Your code uses {label}" in res["message"] and REFUSED in res["message"], res["message"]


DYNAMIC_PATHS = {
    # every path reaches the dispatcher, whose attention kernels raise in the sandbox
    "F by computed name": ("import torch\n",
                           "f = getattr(torch.nn.functional, 'scaled_dot_' + 'product_attention')\n"
                           "o = f(q, k, v, attn_mask=mask)\nreturn o, o",
                           "torch.nn.functional.scaled_dot_product_attention"),
    "ops namespace __getattr__": ("import torch\n",
                                  "op = torch.ops.aten.__getattr__('_scaled_dot_product_' + 'attention_math')\n"
                                  "return op(q, k, v, attn_mask=mask)",
                                  "torch.ops.aten._scaled_dot_product_attention_math"),
    "OpOverload .default": ("import torch\n",
                            "ns = getattr(torch.ops, 'at' + 'en')\n"
                            "op = getattr(ns, '_scaled_dot_product_' + 'attention_math').default\n"
                            "return op(q, k, v, mask)",
                            "torch.ops.aten._scaled_dot_product_attention_math"),
    "torch._C._nn": ("import torch\n",
                     "f = getattr(torch._C._nn, 'scaled_dot_' + 'product_attention')\n"
                     "o = f(q, k, v, attn_mask=mask)\nreturn o, o",
                     "torch.ops.aten.scaled_dot_product_attention"),
    "VariableFunctions": ("import torch\n",
                          "f = getattr(torch._C._VariableFunctions, '_scaled_dot_product_' + 'attention_math')\n"
                          "return f(q, k, v, attn_mask=mask)",
                          "torch.ops.aten._scaled_dot_product_attention_math"),
    "dispatcher by string": ("import torch\n",
                             "op = torch._C._get_operation_overload('aten::_scaled_dot_product_' + 'attention_math', '')[0]\n"
                             "return op(q, k, v, mask)",
                             "torch.ops.aten._scaled_dot_product_attention_math"),
    "flash kernel for cpu": ("import torch\n",
                             "op = getattr(torch.ops.aten, '_scaled_dot_product_flash_' + 'attention_for_cpu')\n"
                             "o = op(q.unsqueeze(0), k.unsqueeze(0), v.unsqueeze(0))[0][0]\nreturn o, o",
                             "torch.ops.aten._scaled_dot_product_flash_attention_for_cpu"),
    "torch._decomp table": ("import torch\nimport torch._decomp as dec\n",
                            "op = getattr(torch.ops.aten, '_scaled_dot_product_flash_' + 'attention_for_cpu').default\n"
                            "o = dec.decomposition_table[op](q.unsqueeze(0), k.unsqueeze(0), v.unsqueeze(0))[0][0]\n"
                            "return o, o",
                            "torch.ops.aten._scaled_dot_product_flash_attention_for_cpu"),
    "nn.MultiheadAttention by name": ("import torch\n",
                                      "cls = getattr(torch.nn, 'Multihead' + 'Attention')\n"
                                      "return cls(q.shape[-1], 1)(q, k, v)",
                                      "torch.nn.MultiheadAttention"),
    "multi_head_attention_forward": ("import torch\n",
                                     "f = getattr(torch.nn.functional, 'multi_head_' + 'attention_forward')\n"
                                     "return f(q, k, v, q.shape[-1], 1, None, None, None, None, False, 0.0, None, None)",
                                     "torch.nn.functional.multi_head_attention_forward"),
}


@pytest.mark.parametrize("path", sorted(DYNAMIC_PATHS))
def test_library_kernel_reached_dynamically_gets_zero_with_the_stub_message(path):
    header, body, label = DYNAMIC_PATHS[path]
    res = _grade(_wrapped(body, header))
    assert res["score"] == 0.0, _feedback(res)
    visible = [t for t in res["tests"] if t["visible"]]
    assert all(f"{label} {STUB}" in t["message"] for t in visible), [t["message"] for t in visible]


def test_kernel_captured_at_import_time_is_the_stub():
    src = ("import torch\n_op = getattr(torch.ops.aten, '_scaled_dot_product_' + 'attention_math')\n\n"
           "def scaled_dot_product_attention(q, k, v, mask=None):\n    return _op(q, k, v, attn_mask=mask)\n")
    res = _grade(src)
    assert res["score"] == 0.0
    assert f"torch.ops.aten._scaled_dot_product_attention_math {STUB}" in res["tests"][0]["message"]


def test_stubs_leave_the_operations_a_solution_needs():
    """softmax, matmul, einsum, masked_fill, bmm, where, nan_to_num: all still work in the sandbox."""
    res = _grade((PACK / "solutions" / "nan_to_num.py").read_text())
    assert res["score"] == FULL, _feedback(res)


# ---------------------------------------------------------------- hints are true

def test_which_mistake_names_a_mistake_only_when_it_is_distinguishable_and_matched():
    expected = torch.tensor([0.2, 0.8])
    same_as_expected = torch.tensor([0.2, 0.8])
    other = torch.tensor([0.5, 0.5])
    assert compare.which_mistake(other, expected, {"same": same_as_expected, "other": lambda: other}) == "other"
    # a candidate equal to the reference on these inputs is never named, even if the output equals it
    assert compare.which_mistake(same_as_expected, expected, {"same": same_as_expected}) is None
    # an output matching no candidate gets no name; a candidate that cannot be computed is skipped
    assert compare.which_mistake(torch.tensor([0.9, 0.1]), expected,
                                 [("boom", lambda: 1 / 0), ("other", other)]) is None
    assert compare.which_mistake(torch.tensor([float("nan"), 1.0]), expected, {"nan": torch.tensor([float("nan"), 1.0])}) is None
    with pytest.raises(Fail) as err:
        compare.tensor_or_mistake(other, expected, {"halves": other}, messages={"halves": "You split evenly."})
    assert err.value.hint == "You split evenly." and "max abs error" in err.value.message
    with pytest.raises(Fail) as err:
        compare.tensor_or_mistake(torch.tensor([0.9, 0.1]), expected, {"halves": other})
    assert err.value.hint is None and "e.g. at index (0,)" in err.value.message


def test_scaling_by_sqrt_dv_is_named_as_such_and_not_as_missing_scaling():
    res = _grade(_wrapped("import math\ns = q @ k.transpose(-2, -1) / math.sqrt(v.shape[-1])\n"
                          "if mask is not None:\n    s = s.masked_fill(~mask, float('-inf'))\n"
                          "w = torch.softmax(s, -1)\nreturn w @ v, w"))
    fb = _feedback(res)
    assert "sqrt(d_v)" in fb and "without scaling" not in fb
    by_id = {t["id"]: t for t in res["tests"]}
    assert by_id["causal_mask"]["status"] == "passed"          # d_v == d_k there: not a mistake on those inputs


def test_a_wrong_result_that_is_no_known_mistake_gets_where_and_how_much_but_no_guess():
    res = _grade(_wrapped("import math\ns = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])\n"
                          "if mask is not None:\n    s = s.masked_fill(~mask, float('-inf'))\n"
                          "w = torch.softmax(s * 1.1, -1)\nreturn w @ v, w"))
    values = next(t for t in res["tests"] if t["id"] == "values_2d")
    assert values["status"] == "failed"
    assert "weights differs from the expected values" in values["message"] and "max abs error" in values["message"]
    assert "Hint:" not in values["message"], values["message"]


# ---------------------------------------------------------------- the engine's call_with_args (issue 16)

INPLACE_DRIVER = '''
import torch
from grader.authoring import Fail, case, compare


@case(points=10)
def inputs_unchanged(ctx):
    """inputs left unchanged"""
    q = torch.randn(3, 4, generator=ctx.rng)
    mask = torch.ones(3, 3, dtype=torch.bool)
    out, args, kwargs = ctx.sub.call_with_args("scaled_dot_product_attention", q, q.clone(), q.clone(), mask=mask)
    compare.unpack(out, 2, "the return value")
    if not (isinstance(args, tuple) and len(args) == 3 and set(kwargs) == {"mask"}):
        raise Fail("internal: arguments not returned")
    for name, after in zip("qkv", args):
        if not torch.equal(after, q):
            raise Fail(f"{name} was modified in place")
    if not torch.equal(kwargs["mask"], mask):
        raise Fail("mask was modified in place")
    mod = ctx.sub.construct("torch.nn.Identity")
    res, args, _ = mod.call_with_args("__call__", q.clone())
    if not torch.equal(res, q) or not torch.equal(args[0], q):
        raise Fail("internal: handle call_with_args")
'''


def test_call_with_args_returns_the_arguments_as_the_call_left_them(tmp_path):
    import shutil

    pack = tmp_path / "attention"
    shutil.copytree(PACK, pack)
    (pack / "tests.py").write_text(INPLACE_DRIVER)
    ok = grade(pack, "attention.py", REFERENCE.encode())
    assert ok["score"] == FULL, _feedback(ok)
    mutating = REFERENCE.replace("    d_k = q.shape[-1]\n", "    d_k = q.shape[-1]\n    k.mul_(1.0)\n    v.add_(1.0)\n")
    assert mutating != REFERENCE
    res = grade(pack, "attention.py", mutating.encode())
    assert res["score"] == 0.0 and "v was modified in place" in _feedback(res), _feedback(res)
    masking = REFERENCE.replace("    d_k = q.shape[-1]\n", "    d_k = q.shape[-1]\n    mask[0, 0] = False\n")
    res = grade(pack, "attention.py", masking.encode())
    assert res["score"] == 0.0 and "mask was modified in place" in _feedback(res), _feedback(res)


def test_flex_attention_cannot_be_imported_in_the_sandbox():
    src = _wrapped("import importlib\nfa = importlib.import_module('torch.nn.attention.flex' + '_attention')\n"
                   "o = getattr(fa, 'flex' + '_attention')(q, k, v)\nreturn o, o")
    res = _grade(src)
    assert res["score"] == 0.0
    first = res["tests"][0]["message"]
    assert "ModuleNotFoundError" in first and "torch.nn.attention.flex_attention" in first, first
    static = _grade(_wrapped("from torch.nn.attention.flex_attention import flex_attention\n"
                             "o = flex_attention(q, k, v)\nreturn o, o"))
    assert static["score"] == 0.0 and "Your code uses" in static["message"] and "flex_attention" in static["message"]


def test_the_handouts_try_it_yourself_block_as_a_last_notebook_cell_gets_full_marks():
    import re

    import nbformat

    handout = (PACK / "handout.md").read_text()
    block = re.search(r"## Try it yourself.*?```python\n(.*?)```", handout, re.S).group(1)
    assert "F.scaled_dot_product_attention" in block or "functional.scaled_dot_product_attention" in block
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(REFERENCE), nbformat.v4.new_code_cell(block)])
    res = grade(PACK, "attention.ipynb", nbformat.writes(nb).encode())
    assert res["score"] == FULL, _feedback(res)
