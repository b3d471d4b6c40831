"""Disguised copies of a Python file, as a student who copies would make them: identifiers renamed,
top-level functions and classes reordered, comments and prints added, blank lines changed.
Used by the similarity tests and bench/similarity.py (deterministic for a seed)."""
from __future__ import annotations

import ast
import builtins
import io
import random
import tokenize

WORDS = ["alpha", "beta", "gamma", "delta", "tmp", "res", "val", "buf", "acc", "item", "node", "data", "thing",
         "foo", "bar", "baz", "qux", "zeta", "omega", "sigma", "kappa", "lam", "mu", "nu", "xi", "rho", "tau"]
COMMENTS = ["# compute the result", "# TODO: clean up", "# this is my own implementation", "# step 2",
            "# helper", "# careful with shapes here", "# see lecture 4", "# works on my machine"]


def bound_names(source: str) -> set[str]:
    tree = ast.parse(source)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
    return {n for n in names if not n.startswith("__") and n != "self"}


def rename(source: str, rng: random.Random, keep=frozenset()) -> str:
    """Every identifier the file binds (but ``keep``: the names the assignment requires) renamed
    where it stands for the file's own name (as an editor's "rename symbol" does): library
    attributes and keyword arguments of library calls keep their names, so the copy still runs."""
    names = sorted(bound_names(source) - set(keep) - set(dir(builtins)))
    mapping = {n: f"{rng.choice(WORDS)}_{i}{rng.randint(0, 99)}" for i, n in enumerate(names)}
    tree = ast.parse(source)
    own_attrs = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store)}
    own_funcs = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    at: set[tuple[int, int]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in mapping:
            at.add((node.lineno, node.col_offset))
        elif isinstance(node, ast.arg) and node.arg in mapping:
            at.add((node.lineno, node.col_offset))
        elif isinstance(node, ast.Attribute) and node.attr in mapping and node.attr in own_attrs:
            at.add((node.end_lineno, node.end_col_offset - len(node.attr)))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in own_funcs:
            at.update((kw.lineno, kw.col_offset) for kw in node.keywords if kw.arg in mapping)
    out = []
    previous = None
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.NAME and tok.string in mapping and (
                tok.start in at or (previous is not None and previous.string in ("def", "class"))):
            tok = tok._replace(string=mapping[tok.string])
        if tok.type not in (tokenize.NL, tokenize.COMMENT):
            previous = tok
        out.append(tok)
    return tokenize.untokenize(out)


def reorder(source: str, rng: random.Random) -> str:
    """Top-level functions and classes shuffled (imports and other statements stay first)."""
    tree = ast.parse(source)
    lines = source.splitlines()
    blocks, rest, taken = [], [], set()
    for node in tree.body:
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])]) - 1
        span = list(range(start, node.end_lineno))
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            blocks.append("\n".join(lines[i] for i in span))
            taken.update(span)
    main = [ln for i, ln in enumerate(lines) if i not in taken]
    rng.shuffle(blocks)
    # keep the module's leading statements (imports) first and its trailing ones (a __main__ block) last
    cut = next((i for i, ln in enumerate(main) if ln.startswith("if __name__")), len(main))
    return "\n".join(main[:cut]) + "\n\n" + "\n\n\n".join(blocks) + "\n\n" + "\n".join(main[cut:]) + "\n"


def decorate(source: str, rng: random.Random, comments: float = 0.3, prints: float = 0.15) -> str:
    """Comments and print() lines sprinkled in, blank lines added."""
    out = []
    lines = source.splitlines()
    for i, ln in enumerate(lines):
        stripped = ln.strip()
        indent = ln[: len(ln) - len(ln.lstrip())]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if stripped and not stripped.startswith(("@", "#", ")", "]", "}", "else", "elif", "except", "finally")) \
                and rng.random() < comments:
            out.append(f"{indent}{rng.choice(COMMENTS)}")
        out.append(ln)
        if stripped.endswith(":") and stripped.startswith(("def ", "for ", "if ")) and rng.random() < prints:
            nind = nxt[: len(nxt) - len(nxt.lstrip())] or indent + "    "
            out.append(f'{nind}print("debug", {rng.randint(0, 9)})')
        if rng.random() < 0.1:
            out.append("")
    return "\n".join(out) + "\n"


def disguise(source: str, seed: int, keep=frozenset()) -> str:
    rng = random.Random(seed)
    text = rename(source, rng, keep)
    text = reorder(text, rng)
    text = decorate(text, rng)
    ast.parse(text)  # still Python
    return text


JUNK = ["_unused = None", "_debug_shape = None", "_counter = 0", "_seen = []", "_tmp = 1.0"]


def pad(source: str, rng: random.Random, count: int = 2) -> str:
    """Dead statements inserted before random statements of function bodies (a copier's padding)."""
    lines = source.splitlines()
    spots = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            spots += [(st.lineno - 1, st.col_offset) for st in node.body[1:]]
    for i, col in sorted(rng.sample(spots, min(count, len(spots))), reverse=True):
        lines.insert(i, " " * col + rng.choice(JUNK))
    text = "\n".join(lines) + "\n"
    ast.parse(text)
    return text
