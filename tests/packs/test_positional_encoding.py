"""The positional_encoding pack, graded through grader.api.grade with the real sandbox.

Reference full marks, starter zero (.py and .ipynb), every mutant its recorded score and message,
the second solution (float32 exp/log encodings, SDPA attention) full marks under several seeds, and
the hostile and edge cases of this pack: a library encoder layer, float64 encodings, an ignored
padding mask.
"""
from __future__ import annotations

import importlib.util
import math
import shutil
import tomllib
from pathlib import Path

import pytest
import torch

from grader.api import grade

PACK = Path(__file__).resolve().parents[2] / "assignments" / "positional_encoding"
REFERENCE = (PACK / "reference.py").read_text()
EXPECTED = tomllib.loads((PACK / "mutants" / "expected.toml").read_text())
FULL = 20.0


def _grade(source: str | bytes, filename: str = "positional_encoding.py", pack: Path = PACK) -> dict:
    data = source.encode() if isinstance(source, str) else source
    result = grade(pack, filename, data)
    assert result["max_score"] == FULL
    return result


def _feedback(result: dict) -> str:
    return "\n".join([result["message"]] + [t["message"] for t in result["tests"]])


def _failed(result: dict) -> set[str]:
    return {t["id"] for t in result["tests"] if t["status"] != "passed"}


def _reference():
    spec = importlib.util.spec_from_file_location("pe_reference", PACK / "reference.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_reference_encoding_matches_the_formula_and_the_handout_table():
    pe = _reference().positional_encoding(3, 4)
    assert pe.dtype == torch.float32 and pe.shape == (3, 4)
    table = torch.tensor([[0.0, 1.0, 0.0, 1.0], [0.8415, 0.5403, 0.0100, 0.9999], [0.9093, -0.4161, 0.0200, 0.9998]])
    assert torch.allclose(pe, table, atol=1e-4)
    pe = _reference().positional_encoding(20, 9)
    for pos in (0, 7, 19):
        for col in range(9):
            angle = pos / 10000 ** ((col - col % 2) / 9)
            assert math.isclose(pe[pos, col].item(), math.sin(angle) if col % 2 == 0 else math.cos(angle), abs_tol=1e-6)


def test_reference_block_matches_torch_encoder_layer():
    """Independent check of the trusted block: torch's post-norm TransformerEncoderLayer, same weights."""
    torch.manual_seed(0)
    ref = _reference().EncoderBlock(32, 4, 64).eval()
    lib = torch.nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True, norm_first=False).eval()
    with torch.no_grad():
        a = ref.attn
        lib.self_attn.in_proj_weight.copy_(torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight]))
        lib.self_attn.in_proj_bias.copy_(torch.cat([a.q_proj.bias, a.k_proj.bias, a.v_proj.bias]))
        lib.self_attn.out_proj.load_state_dict(a.out_proj.state_dict())
        lib.linear1.load_state_dict(ref.ff1.state_dict())
        lib.linear2.load_state_dict(ref.ff2.state_dict())
        lib.norm1.load_state_dict(ref.norm1.state_dict())
        lib.norm2.load_state_dict(ref.norm2.state_dict())
        x = torch.randn(2, 6, 32)
        mask = torch.tensor([[1] * 6, [1] * 4 + [0] * 2])
        assert torch.allclose(ref(x), lib(x), atol=1e-5)
        got, want = ref(x, mask), lib(x, src_key_padding_mask=mask == 0)
        assert torch.allclose(got[mask.bool()], want[mask.bool()], atol=1e-5)


def test_reference_full_marks():
    result = _grade(REFERENCE)
    assert result["status"] == "graded", result["message"]
    assert result["score"] == FULL, _feedback(result)


@pytest.mark.parametrize("name", ["starter.py", "starter.ipynb"])
def test_starter_scores_zero(name):
    filename = "positional_encoding.ipynb" if name.endswith(".ipynb") else "positional_encoding.py"
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
    source = (PACK / "solutions" / "exp_log_sdpa.py").read_text()
    assert _grade(source)["score"] == FULL
    for seed in (3, 424242):
        copy = tmp_path / f"positional_encoding_{seed}"
        shutil.copytree(PACK, copy)
        toml = (copy / "assignment.toml").read_text().replace("seed = 2025", f"seed = {seed}")
        (copy / "assignment.toml").write_text(toml)
        result = _grade(source, pack=copy)
        assert result["score"] == FULL, _feedback(result)


# ------------------------------------------------------------------ hostile and edge cases

LIBRARY_BLOCK = '''
import math
import torch
from torch import nn


def positional_encoding(max_len, d_model):
    pos = torch.arange(max_len)[:, None].double()
    angle = pos / 10000 ** (torch.arange(0, d_model, 2).double() / d_model)
    pe = torch.zeros(max_len, d_model, dtype=torch.float64)
    pe[:, 0::2], pe[:, 1::2] = angle.sin(), angle.cos()[:, : d_model // 2]
    return pe.float()


class EncoderBlock(nn.Module):
    def __init__(self, d_model, num_heads, d_ff, dropout=0.0):
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(d_model, num_heads, d_ff, dropout, batch_first=True)

    def forward(self, x, attention_mask=None):
        return self.layer(x)
'''


def test_library_encoder_layer_is_refused():
    result = _grade(LIBRARY_BLOCK)
    assert result["score"] == 0
    assert "TransformerEncoderLayer, which this assignment does not allow" in _feedback(result)


def test_float64_encodings_lose_the_encoding_points_only():
    source = REFERENCE.replace("    return pe.to(torch.float32)\n", "    return pe\n")
    result = _grade(source)
    assert _failed(result) == {"pe_small", "pe_large_hidden", "pe_edge_hidden"}, _feedback(result)
    assert result["score"] == FULL - 7
    assert "has dtype torch.float64, expected torch.float32" in _feedback(result)


def test_ignored_padding_mask_is_diagnosed():
    source = REFERENCE.replace("        if attention_mask is not None:\n", "        if False:\n")
    result = _grade(source)
    assert _failed(result) == {"block_mask", "block_hidden", "stack_hidden"}, _feedback(result)
    assert result["score"] == FULL - 3 - 2 - 2
    assert "what ignoring attention_mask gives" in _feedback(result)


def test_inverted_padding_mask_is_diagnosed():
    source = REFERENCE.replace("keep = attention_mask.to(torch.bool)", "keep = ~attention_mask.to(torch.bool)")
    result = _grade(source)
    assert "block_mask" in _failed(result)
    assert "what an inverted mask gives" in _feedback(result)


def test_nan_from_an_additive_inf_mask_is_not_called_an_inverted_mask():
    """(1 - mask) * -inf is NaN at every real token: the message says where the NaN are, and names no
    mistake it does not match (the old hint called every NaN an inverted mask)."""
    result = _grade((PACK / "mutants" / "additive_inf_mask.py").read_text())
    fb = _feedback(result)
    assert "contains 480 NaN" in fb and "inverted" not in fb and "Hint:" not in fb, fb


def test_extra_state_dict_entry_fails_only_the_parameter_test():
    source = REFERENCE.replace("        self.dropout = nn.Dropout(dropout)\n",
                               "        self.dropout = nn.Dropout(dropout)\n"
                               "        self.register_buffer(\"scale\", torch.ones(1))\n")
    assert source != REFERENCE
    result = _grade(source)
    assert _failed(result) == {"block_parameters"}, _feedback(result)
    assert "unexpected entries ['scale']" in _feedback(result)


def test_renamed_sublayer_fails_every_block_test_naming_the_weights():
    source = REFERENCE.replace("self.ff2", "self.ffn_out")
    result = _grade(source)
    assert _failed(result) == {"block_parameters", "block_basic", "block_mask", "block_hidden", "stack_hidden"}
    assert "the reference weights ['ff2.bias', 'ff2.weight'] have no place in your block" in _feedback(result)
