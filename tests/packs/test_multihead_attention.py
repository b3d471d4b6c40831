"""The multihead_attention pack, graded through grader.api.grade with the real sandbox.

Reference full marks, starter zero (.py and .ipynb), every mutant its recorded score and message,
the second solution full marks (also under other seeds), and the hostile cases specific to this
pack: forbidden library attention (static and dynamic), a cache hidden in self, extra parameters,
a wrong return type.
"""
from __future__ import annotations

import importlib.util
import shutil
import tomllib
from pathlib import Path

import pytest
import torch

from grader.api import grade

PACK = Path(__file__).resolve().parents[2] / "assignments" / "multihead_attention"
REFERENCE = (PACK / "reference.py").read_text()
EXPECTED = tomllib.loads((PACK / "mutants" / "expected.toml").read_text())
FULL = 20.0


def _grade(source: str | bytes, filename: str = "multihead_attention.py", pack: Path = PACK) -> dict:
    data = source.encode() if isinstance(source, str) else source
    result = grade(pack, filename, data)
    assert result["max_score"] == FULL
    return result


def _feedback(result: dict) -> str:
    return "\n".join([result["message"]] + [t["message"] for t in result["tests"]])


def _failed(result: dict) -> set[str]:
    return {t["id"] for t in result["tests"] if t["status"] != "passed"}


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(f"mha_{path.stem}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_reference_matches_torch_multihead_attention():
    """Independent check of the trusted reference: same weights in torch.nn.MultiheadAttention."""
    torch.manual_seed(0)
    ref = _load(PACK / "reference.py").MultiHeadAttention(32, 4)
    lib = torch.nn.MultiheadAttention(32, 4, batch_first=True)
    with torch.no_grad():
        lib.in_proj_weight.copy_(torch.cat([ref.q_proj.weight, ref.k_proj.weight, ref.v_proj.weight]))
        lib.in_proj_bias.copy_(torch.cat([ref.q_proj.bias, ref.k_proj.bias, ref.v_proj.bias]))
        lib.out_proj.weight.copy_(ref.out_proj.weight)
        lib.out_proj.bias.copy_(ref.out_proj.bias)
        x = torch.randn(2, 7, 32)
        mask = torch.ones(7, 7, dtype=torch.bool).triu(1)  # torch: True = masked
        assert torch.allclose(ref(x)[0], lib(x, x, x, need_weights=False)[0], atol=1e-6)
        assert torch.allclose(ref(x, causal=True)[0], lib(x, x, x, attn_mask=mask, need_weights=False)[0], atol=1e-6)
    assert sum(p.numel() for p in ref.parameters()) == 4 * 32 * 32 + 4 * 32


def test_reference_full_marks():
    result = _grade(REFERENCE)
    assert result["status"] == "graded", result["message"]
    assert result["score"] == FULL, _feedback(result)
    assert {t["id"] for t in result["tests"] if not t["visible"]} == {
        "shapes_hidden", "no_bias_hidden", "causal_hidden", "prefill_chunks_hidden", "interleaved_hidden"}


@pytest.mark.parametrize("name", ["starter.py", "starter.ipynb"])
def test_starter_scores_zero(name):
    filename = "multihead_attention.ipynb" if name.endswith(".ipynb") else "multihead_attention.py"
    result = _grade((PACK / name).read_bytes(), filename)
    assert result["status"] == "graded"
    assert result["score"] == 0
    assert "NotImplementedError" in _feedback(result)


@pytest.mark.parametrize("mutant", sorted(EXPECTED))
def test_mutant_score_and_message(mutant):
    result = _grade((PACK / "mutants" / f"{mutant}.py").read_text())
    assert result["score"] == EXPECTED[mutant]["score"], _feedback(result)
    assert EXPECTED[mutant]["message"] in _feedback(result)


def test_every_mutant_file_is_recorded():
    assert {p.stem for p in (PACK / "mutants").glob("*.py")} == set(EXPECTED)


def test_second_solution_full_marks_under_other_seeds(tmp_path):
    """The einsum solution differs from the reference by float rounding only: full marks for the
    pack's seed and two others (the tolerances are not tuned to one draw)."""
    source = (PACK / "solutions" / "einsum_heads.py").read_text()
    assert _grade(source)["score"] == FULL
    for seed in (7, 99991):
        copy = tmp_path / f"multihead_attention_{seed}"
        shutil.copytree(PACK, copy)
        toml = (copy / "assignment.toml").read_text().replace("seed = 2024", f"seed = {seed}")
        (copy / "assignment.toml").write_text(toml)
        result = _grade(source, pack=copy)
        assert result["score"] == FULL, _feedback(result)


def test_solution_as_notebook_full_marks():
    import nbformat

    code = (PACK / "solutions" / "einsum_heads.py").read_text()
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("My multi-head attention"),
        nbformat.v4.new_code_cell("%matplotlib inline\n" + code),
        nbformat.v4.new_code_cell("mha = MultiHeadAttention(8, 2)\nprint(mha(torch.randn(1, 3, 8))[0].shape)"),
    ])
    result = _grade(nbformat.writes(nb), "multihead_attention.ipynb")
    assert result["score"] == FULL, _feedback(result)


# ------------------------------------------------------------------ hostile and edge cases

SDPA_STATIC = REFERENCE.replace(
    "        scores = q @ k.transpose(-2, -1) / math.sqrt(self.d_head)\n",
    "        import torch.nn.functional as F\n"
    "        if not causal:\n"
    "            out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, t, self.d_model)\n"
    "            return self.out_proj(out), ((k, v) if use_cache else None)\n"
    "        scores = q @ k.transpose(-2, -1) / math.sqrt(self.d_head)\n")

SDPA_DYNAMIC = SDPA_STATIC.replace("F.scaled_dot_product_attention(q, k, v)",
                                   "getattr(F, 'scaled_dot_' + 'product_attention')(q, k, v)")


def test_library_attention_is_refused():
    assert SDPA_STATIC != REFERENCE
    result = _grade(SDPA_STATIC)
    assert result["score"] == 0
    assert "scaled_dot_product_attention, which this assignment does not allow" in _feedback(result)


def test_library_attention_found_at_run_time():
    """A name the source scan cannot see is still refused: the sandbox's copy raises when called."""
    result = _grade(SDPA_DYNAMIC)
    assert "scaled_dot_product_attention is not allowed in this assignment" in _feedback(result)
    # this submission calls it on its non-causal path only: exactly the tests that run that path fail
    assert _failed(result) == {"forward_basic", "shapes_hidden", "no_bias_hidden"}, _feedback(result)
    assert result["score"] == FULL - 3 - 2 - 1


def test_aten_attention_op_reached_dynamically_is_blocked():
    """torch.ops.aten's attention kernels are stubbed too (the [forbid] patches of assignment.toml)."""
    source = SDPA_STATIC.replace(
        "F.scaled_dot_product_attention(q, k, v)",
        "getattr(getattr(torch.ops, 'at' + 'en'), '_scaled_dot_' + 'product_attention_math')(q, k, v)[0]")
    assert source != SDPA_STATIC
    result = _grade(source)
    assert "torch.ops.aten._scaled_dot_product_attention_math is not allowed in this assignment" in _feedback(result)
    assert _failed(result) == {"forward_basic", "shapes_hidden", "no_bias_hidden"}, _feedback(result)


def test_library_use_in_main_guard_is_allowed():
    source = REFERENCE + (
        "\n\nif __name__ == '__main__':\n"
        "    lib = torch.nn.MultiheadAttention(8, 2, batch_first=True)\n"
        "    print(torch.nn.functional.scaled_dot_product_attention)\n")
    assert _grade(source)["score"] == FULL


STATEFUL = '''
import math
import torch
from torch import nn


class MultiHeadAttention(nn.Module):
    """Keeps the cache in self and only looks at past_kv to know whether to continue it."""

    def __init__(self, d_model, num_heads, bias=True):
        super().__init__()
        self.h, self.dh = num_heads, d_model // num_heads
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_model, d_model, bias=bias)
        self.v_proj = nn.Linear(d_model, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)
        self._cache = None

    def forward(self, x, causal=False, past_kv=None, use_cache=False):
        b, t, d = x.shape
        split = lambda z: z.view(b, t, self.h, self.dh).transpose(1, 2)
        q, k, v = split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))
        if past_kv is not None and self._cache is not None:
            k = torch.cat([self._cache[0], k], dim=2)
            v = torch.cat([self._cache[1], v], dim=2)
        s = k.shape[2]
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.dh)
        if causal:
            allowed = torch.ones(t, s, dtype=torch.bool).tril(diagonal=s - t)
            scores = scores.masked_fill(~allowed, float("-inf"))
        out = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, d)
        if use_cache:
            self._cache = (k, v)
        return self.out_proj(out), ((k, v) if use_cache else None)
'''


def test_cache_hidden_in_self_fails_interleaved_decoding():
    result = _grade(STATEFUL)
    assert _failed(result) == {"interleaved_hidden"}, _feedback(result)
    assert result["score"] == FULL - 2
    assert "everything a step needs must travel through past_kv / present_kv" in _feedback(result)


def test_extra_parameter_is_named():
    source = REFERENCE.replace(
        "        self.out_proj = nn.Linear(d_model, d_model, bias=bias)\n",
        "        self.out_proj = nn.Linear(d_model, d_model, bias=bias)\n"
        "        self.temperature = nn.Parameter(torch.ones(1))\n")
    result = _grade(source)
    # the structure test names it; the behaviour (the extra parameter is unused) is graded everywhere else
    assert _failed(result) == {"parameters"}, _feedback(result)
    assert result["score"] == FULL - 2
    assert "unexpected entries ['temperature']" in _feedback(result)


def test_persistent_mask_buffer_fails_only_the_structure_test_and_is_named():
    result = _grade((PACK / "mutants" / "persistent_mask_buffer.py").read_text())
    assert _failed(result) == {"parameters"}, _feedback(result)
    assert "unexpected entries ['bias']" in _feedback(result) and "persistent=False" in _feedback(result)
    assert ", persistent=False)" in (PACK / "solutions" / "nanogpt_style.py").read_text()  # the full-marks twin


def test_renamed_projection_fails_every_test_and_names_the_weights_without_a_place():
    source = REFERENCE.replace("self.out_proj", "self.o_proj")
    assert source != REFERENCE
    result = _grade(source)
    assert result["score"] == 0
    assert "the reference weights ['out_proj.bias', 'out_proj.weight'] have no place in your module" in _feedback(result)


def test_own_scaled_dot_product_attention_helper_is_not_taken_for_the_library():
    """Issue 16: the function of the first assignment, reused under its own name, is the student's."""
    source = (PACK / "solutions" / "einsum_heads.py").read_text()
    helper = ("\n\ndef scaled_dot_product_attention(q, k, v, mask=None):\n"
              "    s = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5\n"
              "    if mask is not None:\n        s = s.masked_fill(~mask, float('-inf'))\n"
              "    w = torch.softmax(s, dim=-1)\n    return w @ v, w\n")
    source = source.replace(
        '        scores = torch.einsum("bhqd,bhkd->bhqk", q, k) * self.dk ** -0.5\n',
        '        allowed = None\n'
        '        if causal:\n'
        '            allowed = torch.arange(k.shape[-2])[None, :] <= torch.arange(past, past + x.shape[1])[:, None]\n'
        '        ctx, _ = scaled_dot_product_attention(q, k, v, allowed)\n'
        '        merged = torch.cat(ctx.unbind(dim=1), dim=-1)\n'
        '        return self.out_proj(merged), ((k, v) if use_cache else None)\n'
        '        scores = torch.einsum("bhqd,bhkd->bhqk", q, k) * self.dk ** -0.5\n') + helper
    assert "scaled_dot_product_attention(q, k, v, allowed)" in source
    result = _grade(source)
    assert result["score"] == FULL, _feedback(result)


def test_causal_offset_bug_is_named_as_such():
    result = _grade((PACK / "mutants" / "causal_no_offset.py").read_text())
    fb = _feedback(result)
    assert "without the cache offset" in fb and "Keep no cache in self" not in fb
    assert _failed(result) == {"decode_steps", "prefill_chunks_hidden", "interleaved_hidden"}, fb


def test_forward_returning_only_the_output():
    source = REFERENCE.replace("return out, ((k, v) if use_cache else None)", "return out")
    result = _grade(source)
    assert result["score"] == 2  # the parameter count only
    assert "the return value of forward (out, present_kv)" in _feedback(result)


def test_module_correct_only_for_the_visible_size_gets_the_visible_points_only():
    """Every visible test uses d_model=32, 4 heads; no hidden test does. A module that is right only
    there (here: it returns zeros for any other size) earns exactly the visible points."""
    source = REFERENCE.replace(
        "        out = self.out_proj(out)\n",
        "        out = self.out_proj(out)\n"
        "        if (self.d_model, self.num_heads) != (32, 4):\n"
        "            out = torch.zeros_like(out)\n")
    assert source != REFERENCE
    result = _grade(source)
    visible = sum(t["max_score"] for t in result["tests"] if t["visible"])
    assert visible == 10
    assert result["score"] == visible, _feedback(result)
