"""Trusted driver for `embeddings_notebook`.

Promises of handout.md and the case(s) that exercise each:

  word_vector: last_hidden_state[0, i], i = position of 'bank' in input_ids ... bank_vectors (river and money
                                 sentences; a named diagnosis only when the vector equals what [CLS], another
                                 position, a sentence average or another layer gives on that sentence)
  any way to find the position ([CLS] offset, offsets mapping, word_ids, a batch)  bank_vectors: compared by
                                 value (atol 1e-4, rtol 1e-3), solutions/ use four different ways
  cosine u.v / (|u||v|), in [-1, 1]; a dot product is not a similarity ....... cosine_river_money (range check
                                 names the dot product only when the value is outside [-1, 1]),
                                 cosine_river_river (hidden)
  PCA: stack six, subtract the mean row, SVD, X_c V[:, :2], shape (6, 2) ..... projection (uncentred SVD named
                                 only when the points equal it)
  either sign of a component is accepted .................................... projection (_align_signs, per column)
  sklearn PCA / numpy eigh / torch SVD all fine ............................. solutions/ (sklearn, Gram-matrix eigh,
                                 U*S, covariance eigh)
  the plot: `fig` holds the six points and the notebook displays an image .... plot
  one colour per sense, points labelled ..................................... not graded (the grading table
                                 promises only the six points and a displayed image)
  discussion question ....................................................... not graded (the handout says so)
  a failing cell does not stop the others; feedback names the first ......... _executed (note), starter test
  90 s per cell ............................................................. execute_notebook(cell_timeout=90)

The submitted notebook is executed with nbclient inside the sandbox (`execute_notebook`). One
trusted cell is appended: it reads the result variables the handout names (`bank_river`,
`bank_money`, `cos_river_money`, `cos_river_river`, `bank_points`, `fig`) and displays them as a
single JSON output of type application/vnd.courseplatform.values+json. Nothing else in the
notebook is interpreted, so students may structure their cells as they like. The executed
notebook (without the appended cell) is returned as the artifact `executed.ipynb`, with its
outputs and the plot, for the student's feedback page.

Expected values are computed here, in the trusted process, with the same encoder and sentences
(reference.py).

Tolerances and why. The pack runs on the cpu queue in float32. (On a GPU with TF32 matmuls the
vectors would move by up to ~1e-3 relative; a GPU deployment would need atol=rtol=5e-3 for the
vectors and 1e-3 for the cosines, which still separates every mistake below by more than 10x.)
- Contextual vectors: atol=1e-4, rtol=1e-3. float32 inference on CPU; encoding the sentences one
  by one or as a padded batch, or with another thread count, moves values by ~1e-6, far below
  this. Any real mistake (another token, another layer, pooling) moves them by > 0.1.
- Cosine similarities: atol=1e-4 (the values are ~0.80 and ~0.86; a dot product gives ~70).
- 2-D projection: principal components are defined up to sign, so each column is compared after
  flipping it to agree with the reference; then atol=1e-3 * max|reference|. sklearn's PCA and
  an eigendecomposition of the covariance matrix agree to ~1e-6; torch.pca_lowrank(X, q=2) is a
  randomized approximation that is off by ~25% here and is rejected (the handout warns).
- Plot: the figure `fig` must contain the 6 projected points (within 1e-3 relative) and the
  notebook must display an image.
"""

import base64
import json
import weakref

import torch

from grader.authoring import Fail, SandboxCrash, SandboxTimeout, case, notebook

VALUES_MIME = "application/vnd.courseplatform.values+json"
NAMES = ("bank_river", "bank_money", "cos_river_money", "cos_river_river", "bank_points")

COLLECT = r'''
def __courseplatform_collect():
    import numpy as _np
    g = globals()
    out = {}
    for name in %r:
        if name not in g:
            out[name] = {"missing": True}
            continue
        v = g[name]
        try:
            if v is None:
                out[name] = None
            elif hasattr(v, "detach"):
                out[name] = v.detach().cpu().double().tolist()
            elif isinstance(v, (bool, int, float)):
                out[name] = float(v)
            else:
                out[name] = _np.asarray(v, dtype=float).tolist()
        except Exception as exc:
            out[name] = {"unreadable": type(v).__name__ + ": " + str(exc)[:200]}
    fig, pts = g.get("fig"), []
    if fig is not None and hasattr(fig, "axes"):
        for ax in fig.axes:
            for coll in ax.collections:
                try:
                    pts += _np.asarray(coll.get_offsets(), dtype=float).reshape(-1, 2).tolist()
                except Exception:
                    pass
            for line in ax.lines:
                try:
                    pts += _np.column_stack([_np.asarray(line.get_xdata(), dtype=float),
                                             _np.asarray(line.get_ydata(), dtype=float)]).tolist()
                except Exception:
                    pass
    out["fig_points"] = None if fig is None else pts
    return out

from IPython.display import display as __courseplatform_display
__courseplatform_display({%r: __courseplatform_collect()}, raw=True)
''' % (NAMES, VALUES_MIME)

_RUNS = weakref.WeakKeyDictionary()  # one execution per graded submission (keyed by ctx.sub)


def _expected(ctx):
    return ctx.ref.expected()


def _executed(ctx):
    """Execute the notebook once per submission; later cases reuse the result (or the failure)."""
    run = _RUNS.get(ctx.sub)
    if isinstance(run, str):
        raise Fail(run)
    if run is not None:
        return run
    try:
        nb = ctx.sub.execute_notebook(timeout=170, append=[COLLECT], cell_timeout=90)
    except SandboxTimeout:
        _RUNS[ctx.sub] = "Not graded: the notebook did not finish within the time limit (see the first test)."
        raise
    except (SandboxCrash, Fail) as exc:
        _RUNS[ctx.sub] = f"Not graded: the notebook could not be executed ({exc})."
        raise
    values = None
    cells = notebook.code_cells(nb)
    if cells:
        for out in cells[-1].get("outputs", []):
            data = out.get("data") if isinstance(out, dict) else None
            if isinstance(data, dict) and VALUES_MIME in data:
                values = data[VALUES_MIME]
                if isinstance(values, str):
                    values = json.loads(values)
    # the feedback artifact: the student's notebook as executed, without the grader's cell
    shown = dict(nb)
    shown["cells"] = nb["cells"][:-1]
    images = notebook.images(shown)
    errors = [e for e in notebook.errors(shown)]
    ctx.artifact("executed.ipynb", "application/x-ipynb+json", json.dumps(shown).encode())
    if errors:
        first = errors[0]
        ctx.note(f"{len(errors)} cell(s) raised an error; the first: code cell {first['cell'] + 1}: "
                 f"{first['ename']}: {first['evalue'][:200]}")
    run = {"values": values if isinstance(values, dict) else {}, "images": images, "errors": errors}
    _RUNS[ctx.sub] = run
    return run


def _value(run, name):
    values = run["values"]
    if name not in values or (isinstance(values[name], dict) and values[name].get("missing")):
        extra = ""
        if run["errors"]:
            e = run["errors"][0]
            extra = f" (code cell {e['cell'] + 1} raised {e['ename']}: {e['evalue'][:150]})"
        raise Fail(f"the notebook does not define `{name}`{extra}.")
    v = values[name]
    if v is None:
        raise Fail(f"`{name}` is None: fill in the cell that computes it.")
    if isinstance(v, dict):
        raise Fail(f"`{name}` could not be read as numbers ({v.get('unreadable', 'unknown type')}).")
    return v


def _tensor(run, name, shape):
    v = _value(run, name)
    try:
        t = torch.tensor(v, dtype=torch.float64)
    except (TypeError, ValueError):
        raise Fail(f"`{name}` must be a tensor or array of numbers of shape {shape}.") from None
    if tuple(t.shape) != tuple(shape):
        raise Fail(f"`{name}` has shape {tuple(t.shape)}, expected {tuple(shape)}.")
    if not torch.isfinite(t).all():
        raise Fail(f"`{name}` contains NaN or inf.")
    return t


def _diagnose_vector(ctx, got, sentence, what):
    """Name a mistake only when `got` is what it produces on this sentence (computed here): another
    position, [CLS], a sentence average, another layer's vector of 'bank'; otherwise None."""
    tokens, hidden = ctx.ref.token_states(sentence)
    bank = tokens.index("bank")
    close = lambda a, b: torch.allclose(a, b, atol=1e-3, rtol=1e-2)  # noqa: E731
    layers = ctx.ref.layer_states(sentence)
    for k, layer in enumerate(layers[:-1]):
        if close(got, layer[bank]):
            where = "the input embeddings (hidden_states[0], before any attention layer)" if k == 0 else \
                f"layer {k} of {len(layers) - 1} (hidden_states[{k}])"
            return (f"{what} is the vector of 'bank' from {where}; the contextual vector is the last "
                    f"hidden state (last_hidden_state, or hidden_states[-1]).")
    if close(got, hidden[0]):
        return (f"{what} is the [CLS] vector (position 0), a summary of the whole sentence; take the "
                f"hidden state at the position of the token 'bank' instead.")
    for pos in range(len(tokens)):
        if pos != bank and close(got, hidden[pos]):
            return (f"{what} is the vector of the token '{tokens[pos]}' at position {pos}, but 'bank' is at "
                    f"position {bank}: remember that the tokenizer puts [CLS] at position 0.")
    if close(got, hidden.mean(0)) or close(got, hidden[1:-1].mean(0)):
        return f"{what} is an average over the sentence, not the contextual vector of 'bank'."
    return None


@case(points=3, visible=True, timeout=180)
def bank_vectors(ctx):
    """`bank_river` and `bank_money`: the contextual vectors of "bank" """
    run = _executed(ctx)
    exp = _expected(ctx)
    for name, sentence in (("bank_river", ctx.ref.RIVER), ("bank_money", ctx.ref.MONEY)):
        got = _tensor(run, name, (384,))
        if not torch.allclose(got, exp[name], atol=1e-4, rtol=1e-3):
            why = _diagnose_vector(ctx, got, sentence, f"`{name}`")
            if why:
                raise Fail(why)
            diff = (got - exp[name]).abs()
            i = int(diff.argmax())
            raise Fail(f"`{name}` differs from the contextual vector of 'bank' at {int((diff > 1e-4 + 1e-3 * exp[name].abs()).sum())} "
                       f"of 384 components (max abs error {float(diff.max()):.3g} at component {i}: got "
                       f"{float(got[i]):.5g}, expected {float(exp[name][i]):.5g}; tolerance atol 1e-4, rtol 1e-3).")


def _check_cosine(run, name, expected, own=None):
    got = _value(run, name)
    if isinstance(got, list):
        flat = torch.tensor(got, dtype=torch.float64).flatten()
        if flat.numel() != 1:
            raise Fail(f"`{name}` must be a single number, got {flat.numel()} values.")
        got = float(flat[0])
    if not isinstance(got, (int, float)):
        raise Fail(f"`{name}` must be a number.")
    if not -1.0 - 1e-6 <= got <= 1.0 + 1e-6:
        raise Fail(f"`{name}` = {got:.4g}: a cosine similarity lies between -1 and 1. Divide the dot "
                   f"product by the product of the two vectors' norms.")
    if abs(got - expected) > 1e-4:
        extra = ""
        if own is not None and abs(own - expected) > 1e-4 and abs(got - own) <= 1e-4:
            extra = (" It is the cosine of your own vectors, which differ from the expected ones "
                     "(see the first test).")
        raise Fail(f"`{name}` = {got:.5f}, expected {expected:.5f} (tolerance 1e-4).{extra}")


def _own_cosine(run):
    """The cosine of the student's own bank_river and bank_money, when both are readable vectors."""
    try:
        u, v = (torch.tensor(run["values"][n], dtype=torch.float64) for n in ("bank_river", "bank_money"))
        if u.shape == v.shape == (384,) and float(u.norm()) > 0 and float(v.norm()) > 0:
            return float(u @ v / (u.norm() * v.norm()))
    except (KeyError, TypeError, ValueError, RuntimeError):
        pass
    return None


@case(points=2, visible=True)
def cosine_river_money(ctx):
    """`cos_river_money`: cosine similarity between the two senses"""
    run = _executed(ctx)
    _check_cosine(run, "cos_river_money", _expected(ctx)["cos_river_money"], _own_cosine(run))


@case(points=1, visible=False)
def cosine_river_river(ctx):
    """`cos_river_river`: cosine similarity between two river banks"""
    run = _executed(ctx)
    _check_cosine(run, "cos_river_river", _expected(ctx)["cos_river_river"])


def _align_signs(got, ref):
    signs = torch.sign((got * ref).sum(dim=0))
    signs[signs == 0] = 1.0
    return got * signs


@case(points=2, visible=True)
def projection(ctx):
    """`bank_points`: the 2-D PCA projection of the six "bank" vectors"""
    run = _executed(ctx)
    ref = _expected(ctx)["bank_points"]
    got = _tensor(run, "bank_points", (6, 2))
    aligned = _align_signs(got, ref)
    scale = float(ref.abs().max())
    err = float((aligned - ref).abs().max())
    if err > 1e-3 * scale:
        centred = torch.allclose(got.mean(0), torch.zeros(2, dtype=torch.float64), atol=1e-3 * scale)
        extra = "" if centred else " Your points are not centred (their mean is not 0)."
        uncentred = ctx.ref.project_2d_uncentred(ctx.ref.bank_matrix())
        u_err = float((_align_signs(got, uncentred) - uncentred).abs().max())
        if u_err <= 1e-3 * float(uncentred.abs().max()):
            extra = (" They are the projection of the vectors without subtracting their mean row: centre "
                     "the matrix before the SVD.")
        raise Fail(f"`bank_points` differs from the PCA projection (max abs error {err:.3g} after matching "
                   f"the signs of the components, tolerance {1e-3 * scale:.2g}).{extra}")


@case(points=2, visible=True)
def plot(ctx):
    """the plot `fig` shows the six projected points"""
    run = _executed(ctx)
    points = _tensor(run, "bank_points", (6, 2))
    fig_points = run["values"].get("fig_points")
    if fig_points is None:
        raise Fail("the notebook does not define `fig`, the matplotlib figure of your plot.")
    drawn = torch.tensor(fig_points, dtype=torch.float64).reshape(-1, 2) if fig_points else torch.zeros(0, 2)
    scale = float(points.abs().max()) or 1.0
    missing = [i for i in range(6)
               if drawn.numel() == 0 or float((drawn - points[i]).abs().max(dim=1).values.min()) > 1e-3 * scale]
    if missing:
        raise Fail(f"`fig` does not show {len(missing)} of the 6 points of `bank_points` "
                   f"(e.g. point {missing[0]}: {points[missing[0]].tolist()}).")
    if not run["images"]:
        raise Fail("the notebook does not display the figure: end the plotting cell with plt.show() or `fig`.")
    ctx.artifact("bank_projection.png", "image/png", base64.b64decode(run["images"][-1]))
