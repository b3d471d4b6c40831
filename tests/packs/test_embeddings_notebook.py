"""The embeddings_notebook pack, graded through grader.api.grade with the real sandbox: the
notebook is executed with nbclient inside it.

Reference notebook full marks with the executed notebook and the plot returned as artifacts,
starter zero, every mutant its recorded score and message (each named mistake told only to the
mutant that makes it), every solution full marks (four ways to find the vector of "bank"), the
notebooks in sync with their generator, an independent check of the trusted reference, and the
hostile cases: a .py upload, a notebook that tries to read the pack, shell lines, and fake
result variables.
"""
from __future__ import annotations

import base64
import importlib.util
import json
import tomllib
from pathlib import Path

import nbformat
import pytest
import torch

from grader.api import grade
from packs_graded import grade_bytes

PACK = Path(__file__).resolve().parents[2] / "assignments" / "embeddings_notebook"
EXPECTED = tomllib.loads((PACK / "mutants" / "expected.toml").read_text())
FULL = 10.0


def _grade_bytes(data: bytes, filename: str) -> dict:
    result = grade_bytes(PACK, filename, data)  # one grade per file and session (packs_graded.py)
    assert result["max_score"] == FULL
    return result


def _grade_nb(nb_or_path, filename: str | None = None) -> dict:
    """A notebook of the pack under its own name (as test_packs_generic grades it), or one built here."""
    if isinstance(nb_or_path, Path):
        return _grade_bytes(nb_or_path.read_bytes(), filename or nb_or_path.name)
    return _grade_bytes(nbformat.writes(nb_or_path).encode(), filename or "embeddings.ipynb")


def _feedback(result: dict) -> str:
    return "\n".join([result["message"]] + [t["message"] for t in result["tests"]] + result.get("notes", []))


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _reference_nb():
    return nbformat.read(str(PACK / "reference.ipynb"), as_version=4)


def test_notebooks_match_their_generator():
    build = _load(PACK / "build_notebooks.py", "emb_build")
    ref = {"task1": build.TASK1_REF, "task2": build.TASK2_REF, "task3": build.TASK3_REF, "task4": build.TASK4_REF}
    wanted = {"starter.ipynb": build.notebook(build.TASK1_STARTER, build.TASK2_STARTER, build.TASK3_STARTER,
                                              build.TASK4_STARTER),
              "reference.ipynb": build.notebook(**ref)}
    wanted.update({f"solutions/{k}.ipynb": build.notebook(**v) for k, v in build.SOLUTIONS.items()})
    wanted.update({f"mutants/{k}.ipynb": build.notebook(**dict(ref, **v)) for k, v in build.MUTANTS.items()})
    for name, nb in wanted.items():
        on_disk = nbformat.read(str(PACK / name), as_version=4)
        assert [c.source for c in on_disk.cells] == [c.source for c in nb.cells], name
    assert {p.stem for p in (PACK / "mutants").glob("*.ipynb")} == set(build.MUTANTS) == set(EXPECTED)
    assert {p.stem for p in (PACK / "solutions").glob("*.ipynb")} == set(build.SOLUTIONS)


def test_reference_agrees_with_independent_computations():
    """Cosine via torch.nn.functional, PCA via numpy's SVD of the covariance, the token vector via
    sentence-transformers' own Transformer module."""
    import numpy as np
    from sentence_transformers import SentenceTransformer

    ref = _load(PACK / "reference.py", "emb_reference")
    exp = ref.expected()
    st = SentenceTransformer(ref.model_dir(), device="cpu")
    features = st.tokenize([ref.RIVER])
    with torch.no_grad():
        tokens = st[0](features)["token_embeddings"][0].double()
    position = features["input_ids"][0].tolist().index(st.tokenizer.convert_tokens_to_ids("bank"))
    torch.testing.assert_close(tokens[position], exp["bank_river"], atol=1e-5, rtol=1e-4)
    cos = torch.nn.functional.cosine_similarity(exp["bank_river"], exp["bank_money"], dim=0)
    assert abs(float(cos) - exp["cos_river_money"]) < 1e-9
    assert exp["cos_river_river"] > exp["cos_river_money"]  # what the homework is meant to show
    vectors = torch.stack([ref.word_vector(s) for s in ref.SENTENCES]).numpy()
    centred = vectors - vectors.mean(0)
    _, eigvecs = np.linalg.eigh(np.cov(centred.T))
    points = centred @ eigvecs[:, ::-1][:, :2]
    got = exp["bank_points"].numpy()
    assert np.allclose(np.abs(points), np.abs(got), atol=1e-6)
    assert (np.sign(got[:3, 0]) == -np.sign(got[3:, 0])).all()  # the first component separates the senses


def test_reference_full_marks_with_artifacts():
    result = _grade_nb(PACK / "reference.ipynb")
    assert result["status"] == "graded", result["message"]
    assert result["score"] == FULL, _feedback(result)
    assert {t["id"] for t in result["tests"] if not t["visible"]} == {"cosine_river_river"}
    arts = {a["name"]: a for a in result["artifacts"]}
    nb = nbformat.reads(base64.b64decode(arts["executed.ipynb"]["data_b64"]).decode(), as_version=4)
    nbformat.validate(nb)
    sources = [c.source for c in nb.cells]
    assert sources == [c.source for c in _reference_nb().cells]  # the grader's own cell is not shown
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert any("river vs money: 0.80" in o.get("text", "") for o in outputs)
    png = base64.b64decode(arts["bank_projection.png"]["data_b64"])
    assert png.startswith(b"\x89PNG") and arts["bank_projection.png"]["content_type"] == "image/png"
    assert not any("magic" in n for n in result["notes"])


def test_starter_scores_zero():
    result = _grade_nb(PACK / "starter.ipynb")
    assert result["status"] == "graded", result["message"]
    assert result["score"] == 0
    assert "code cell 2 raised NotImplementedError" in _feedback(result)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_mutant_gets_its_score_and_message(name):
    result = _grade_nb(PACK / "mutants" / f"{name}.ipynb")
    assert result["status"] == "graded", result["message"]
    assert result["score"] == EXPECTED[name]["score"], _feedback(result)
    assert EXPECTED[name]["message"] in _feedback(result)


@pytest.mark.parametrize("name", ["numpy_style", "offsets_mapping", "word_pieces_mean", "hidden_states_batch"])
def test_solution_full_marks(name):
    result = _grade_nb(PACK / "solutions" / f"{name}.ipynb")
    assert result["score"] == FULL, _feedback(result)


# each named mistake and the only mutant allowed to be told it (a diagnosis shown to anything else
# would be false)
NAMED = {"is the [CLS] vector": "cls_vector", "remember that the tokenizer puts [CLS]": "wrong_position",
         "is an average over the sentence": "mean_pooling", "from the input embeddings": "embedding_layer",
         "without subtracting their mean row": "no_centering", "a cosine similarity lies between": "dot_product"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_named_mistakes_are_only_told_to_the_mutant_that_makes_them(name):
    text = _feedback(_grade_nb(PACK / "mutants" / f"{name}.ipynb"))
    for phrase, owner in NAMED.items():
        assert (phrase in text) == (owner == name), (phrase, name, text)
    assert "Hint:" not in text  # no static hints: every diagnosis is computed


def test_python_file_is_refused():
    result = grade(PACK, "embeddings.py", b"bank_river = None\n")
    assert result["status"] == "error"
    assert result["score"] == 0
    assert "ipynb" in result["message"]


def test_hostile_notebook_cannot_read_the_pack_and_fake_values_score_nothing():
    """One hostile notebook (one execution, to keep CI fast): a cell that looks for the pack's
    trusted files and shells out, and at the end plausible-looking invented results (right
    shapes, wrong numbers, a figure of other points)."""
    nb = _reference_nb()
    probe = nbformat.v4.new_code_cell(
        "import os\n"
        f"for p in [{str(PACK / 'reference.py')!r}, {str(PACK / 'tests.py')!r}, {str(PACK / 'reference.ipynb')!r}]:\n"
        "    print(p, 'EXISTS' if os.path.exists(p) else 'absent')\n"
        f"print('work:', sorted(os.listdir({str(PACK.parents[1])!r})) if os.path.isdir({str(PACK.parents[1])!r}) else 'none')\n"
        "!cat /etc/shadow\n")
    nb.cells.insert(2, probe)
    nb.cells.append(nbformat.v4.new_code_cell(
        "bank_river = torch.ones(384)\n"
        "bank_money = torch.ones(384)\n"
        "cos_river_money = 0.5\n"
        "cos_river_river = 'high'\n"
        "bank_points = torch.zeros(6, 2)\n"
        "fig, ax = plt.subplots()\n"
        "ax.scatter([1, 2], [3, 4])\n"))
    result = _grade_nb(nb)
    assert result["status"] == "graded"
    assert result["score"] == 0, _feedback(result)
    text = _feedback(result)
    assert "`bank_river` differs from the contextual vector of 'bank' at 384 of 384 components" in text
    assert "`cos_river_money` = 0.50000, expected 0.80430" in text
    hidden = {t["id"]: t for t in result["tests"]}["cosine_river_river"]
    assert hidden["status"] == "failed" and "could not be read" not in hidden["message"]  # hidden: generic message
    assert "`fig` does not show 6 of the 6 points" in text
    executed = json.loads(base64.b64decode(
        next(a for a in result["artifacts"] if a["name"] == "executed.ipynb")["data_b64"]))
    probe_out = "".join("".join(o.get("text", "")) for o in executed["cells"][2]["outputs"])
    assert "EXISTS" not in probe_out and probe_out.count("absent") == 3, probe_out
    # only the virtualenv is visible from the project folder (read-only), never the packs
    assert "work: ['.venv']" in probe_out or "work: none" in probe_out, probe_out
    assert "root:" not in probe_out
