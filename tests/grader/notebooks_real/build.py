"""Regenerate the realistic notebooks of this folder: ``python tests/grader/notebooks_real/build.py``.

Each notebook is written the way Colab or JupyterLab saves it (not with nbformat's writer):
Colab's nbformat 4.0 with ``metadata.colab``, ``accelerator: GPU``, cell ids in the cell metadata,
``outputId`` on outputs, widget views and ``widgets`` state; JupyterLab's 4.5 with top-level cell ids
and out-of-order execution counts; classic Jupyter's 4.4. Sources are lists of lines, as saved.
What each notebook must get is asserted in tests/grader/test_notebooks_real.py.
"""
from __future__ import annotations

import json
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")


def lines(text: str) -> list[str]:
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _uid(seed: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, seed))


# --------------------------------------------------------------------------- outputs

def stream(text: str, name: str = "stdout") -> dict:
    return {"output_type": "stream", "name": name, "text": lines(text)}


def image(plain: str = "<Figure size 640x480 with 2 Axes>") -> dict:
    return {"output_type": "display_data", "metadata": {"needs_background": "light"},
            "data": {"image/png": PNG, "text/plain": lines(plain)}}


def widget(model_id: str, plain: str) -> dict:
    return {"output_type": "display_data", "metadata": {},
            "data": {"application/vnd.jupyter.widget-view+json": {"model_id": model_id, "version_major": 2,
                                                                    "version_minor": 0},
                     "text/plain": lines(plain)}}


def result(count: int, plain: str) -> dict:
    return {"output_type": "execute_result", "execution_count": count, "metadata": {}, "data": {"text/plain": lines(plain)}}


def error(ename: str, evalue: str) -> dict:
    return {"output_type": "error", "ename": ename, "evalue": evalue,
            "traceback": [f"\u001b[0;31m{ename}\u001b[0m: {evalue}"]}


# --------------------------------------------------------------------------- Colab (nbformat 4.0)

class Colab:
    def __init__(self, name: str, gpu: bool = True):
        self.name, self.gpu, self.cells, self.widgets = name, gpu, [], {}

    def md(self, text: str):
        self.cells.append({"cell_type": "markdown", "metadata": {"id": _uid(self.name + text)[:12]}, "source": lines(text)})
        return self

    def code(self, text: str, count=None, outputs=(), height=None):
        cid = _uid(f"{self.name}{len(self.cells)}{text}")[:12]
        meta = {"id": cid}
        outs = []
        for o in outputs:
            o = dict(o)
            if o["output_type"] != "stream":
                o.setdefault("metadata", {})
            outs.append(o)
        if outs:
            meta["colab"] = {"base_uri": "https://localhost:8080/"} | ({"height": height} if height else {})
            meta["outputId"] = _uid(cid + "out")
        self.cells.append({"cell_type": "code", "execution_count": count, "metadata": meta, "outputs": outs,
                           "source": lines(text)})
        return self

    def widget_state(self, model_id: str):
        self.widgets[model_id] = {"model_module": "@jupyter-widgets/controls", "model_name": "HBoxModel",
                                  "model_module_version": "1.5.0",
                                  "state": {"_dom_classes": [], "children": [], "layout": "IPY_MODEL_" + model_id[::-1]}}
        return self

    def json(self) -> dict:
        meta = {"colab": {"provenance": [], "gpuType": "T4", "name": self.name},
                "kernelspec": {"name": "python3", "display_name": "Python 3"},
                "language_info": {"name": "python"}}
        if self.gpu:
            meta["accelerator"] = "GPU"
        if self.widgets:
            meta["widgets"] = {"application/vnd.jupyter.widget-state+json": self.widgets}
        return {"nbformat": 4, "nbformat_minor": 0, "metadata": meta, "cells": self.cells}


# --------------------------------------------------------------------------- JupyterLab (4.5) / classic (4.4)

class Lab:
    def __init__(self, name: str, minor: int = 5):
        self.name, self.minor, self.cells = name, minor, []

    def _cell(self, cell: dict) -> dict:
        if self.minor >= 5:
            cell = {"id": _uid(f"{self.name}{len(self.cells)}")[:8], **cell}
        self.cells.append(cell)
        return cell

    def md(self, text: str):
        self._cell({"cell_type": "markdown", "metadata": {}, "source": lines(text)})
        return self

    def code(self, text: str, count=None, outputs=()):
        meta = {} if self.minor >= 5 else {"collapsed": False}
        self._cell({"cell_type": "code", "execution_count": count, "metadata": meta, "outputs": list(outputs),
                    "source": lines(text)})
        return self

    def json(self) -> dict:
        return {"cells": self.cells, "metadata": {
            "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
            "language_info": {"codemirror_mode": {"name": "ipython", "version": 3}, "file_extension": ".py",
                              "mimetype": "text/x-python", "name": "python", "nbconvert_exporter": "python",
                              "pygments_lexer": "ipython3", "version": "3.11.5"}},
            "nbformat": 4, "nbformat_minor": self.minor}


# --------------------------------------------------------------------------- the students' code

ATTENTION = '''import math
import torch


def scaled_dot_product_attention(q, k, v, mask=None):
    """softmax(q k^T / sqrt(d_k)) v over any leading dimensions; mask: True = may attend."""
    d_k = q.size(-1)
    scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(d_k)
    if mask is not None:
        scores = scores.masked_fill(mask == False, float("-inf"))  # noqa: E712
    weights = scores.softmax(dim=-1)
    if mask is not None:
        weights = weights.masked_fill(mask == False, 0.0)  # noqa: E712
    return torch.matmul(weights, v), weights'''

ATTENTION_WITH_HELPER = '''import math
import torch
from attention_utils import apply_mask


def scaled_dot_product_attention(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    weights = torch.softmax(apply_mask(scores, mask, float("-inf")), dim=-1)
    return apply_mask(weights, mask, 0.0) @ v, apply_mask(weights, mask, 0.0)'''

HELPER = '''import torch


def apply_mask(x, mask, value):
    """x where mask is True, value elsewhere (no mask: x)."""
    return x if mask is None else x.masked_fill(~mask, value)'''

MULTIHEAD = '''import math

import torch
from torch import nn


class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, num_heads, bias=True):
        super().__init__()
        assert d_model % num_heads == 0, "d_model must be divisible by num_heads"
        self.d_model, self.num_heads, self.d_head = d_model, num_heads, d_model // num_heads
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_model, d_model, bias=bias)
        self.v_proj = nn.Linear(d_model, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)

    def split_heads(self, x):
        b, t, _ = x.shape
        return x.view(b, t, self.num_heads, self.d_head).transpose(1, 2)

    def forward(self, x, causal=False, past_kv=None, use_cache=False):
        b, t, _ = x.shape
        q, k, v = (self.split_heads(p(x)) for p in (self.q_proj, self.k_proj, self.v_proj))
        if past_kv is not None:
            k = torch.cat([past_kv[0], k], dim=2)
            v = torch.cat([past_kv[1], v], dim=2)
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.d_head)
        if causal:
            s = k.shape[2]
            keep = torch.ones(t, s, dtype=torch.bool, device=x.device).tril(diagonal=s - t)
            scores = scores.masked_fill(~keep, float("-inf"))
        out = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, self.d_model)
        return self.out_proj(out), ((k, v) if use_cache else None)'''

DEVICE = 'import torch\ndevice = torch.device("cuda" if torch.cuda.is_available() else "cpu")\nprint("Using", device)'
COLAB_FIRST = "from google.colab import drive\ndrive.mount('/content/drive')"


def colab_attention() -> dict:
    """Correct: the course's Colab template on a GPU runtime (Drive, secrets, pip, plots, progress bars)."""
    nb = Colab("attention.ipynb").md("# Homework 3: scaled dot-product attention\nRun all cells, then File > Download > .ipynb.")
    nb.code(COLAB_FIRST, 1, [stream("Mounted at /content/drive\n")])
    nb.code("!pip install -q torch matplotlib tqdm\n!nvidia-smi", 2, [stream("Tue Oct 28 10:12:01 2025\n| NVIDIA-SMI 535.104.05 |\n")])
    nb.code("%load_ext autoreload\n%autoreload 2\n%matplotlib inline", 3)
    nb.code("import os\nfrom google.colab import userdata\nos.environ['HF_TOKEN'] = userdata.get('HF_TOKEN')", 4)
    nb.code(DEVICE, 5, [stream("Using cuda\n")])
    nb.md("## Implementation\n$$\\mathrm{softmax}(QK^T/\\sqrt{d_k})V$$")
    nb.code(ATTENTION, 6)
    nb.code("q = torch.randn(2, 4, 8, device=device)\nout, w = scaled_dot_product_attention(q, q, q)\nout.shape, w.shape", 7,
            [result(7, "(torch.Size([2, 4, 8]), torch.Size([2, 4, 4]))")])
    nb.code("import matplotlib.pyplot as plt\nplt.imshow(w[0].detach().cpu())\nplt.colorbar()\nplt.title('attention weights')\nplt.show()",
            8, [image()], height=435)
    nb.code("from tqdm.notebook import tqdm, trange\nfor _ in trange(3):\n    pass\nfor row in tqdm(w[0]):\n    assert torch.allclose(row.sum(), torch.tensor(1.0, device=device))",
            9, [widget("3b2f6e9c0a8d4c41b9d1", "  0%|          | 0/3 [00:00<?, ?it/s]"),
                widget("5c1d0e7a9b2f4e63a8c4", "  0%|          | 0/4 [00:00<?, ?it/s]")])
    nb.widget_state("3b2f6e9c0a8d4c41b9d1").widget_state("5c1d0e7a9b2f4e63a8c4")
    nb.code("%%time\nmask = torch.ones(4, 4, dtype=torch.bool, device=device).tril()\nout, w = scaled_dot_product_attention(q, q, q, mask)\ndisplay(w[0])",
            10, [stream("CPU times: user 1.2 ms, sys: 0 ns, total: 1.2 ms\nWall time: 1.5 ms\n"),
                 {"output_type": "display_data", "metadata": {}, "data": {"text/plain": ["tensor([[1.0000, 0.0000]])"]}}])
    nb.code("files = !ls /content/drive/MyDrive\ntorch.softmax?\nfrom google.colab import files as colab_files\ncolab_files.download('attention.ipynb')", 11,
            [{"output_type": "display_data", "metadata": {}, "data": {"application/javascript": ["download(\"attention.ipynb\")"],
                                                                    "text/plain": ["<IPython.core.display.Javascript object>"]}}])
    return nb.json()


def lab_attention() -> dict:
    """Correct: JupyterLab, a helper module written with %%writefile, cells run out of order."""
    nb = Lab("attention-lab").md("# Attention (JupyterLab)")
    nb.code("%%writefile attention_utils.py\n" + HELPER, 4, [stream("Writing attention_utils.py\n")])
    nb.code("%%capture install_log\n!pip install torch\nimport sys\nprint(sys.version)\n%run attention_utils.py\nassert apply_mask", 2)
    nb.code(ATTENTION_WITH_HELPER, 7)
    nb.code("get_ipython().run_line_magic('config', \"InlineBackend.figure_format = 'retina'\")\n"
            "from IPython.display import display, Markdown\ndisplay(Markdown('**done**'))", 9,
            [{"output_type": "display_data", "metadata": {}, "data": {"text/markdown": ["**done**"], "text/plain": ["<IPython.core.display.Markdown object>"]}}])
    nb.code("%%html\n<b>Implementation done</b>", 3, [{"output_type": "display_data", "metadata": {}, "data": {"text/html": ["<b>Implementation done</b>"]}}])
    nb.code("%%bash\nnvidia-smi\nls -la", 1, [stream("bash: nvidia-smi: command not found\n", "stderr")])
    nb.code("from tqdm.auto import tqdm\nq = torch.randn(3, 5, 8)\nfor i in tqdm(range(2)):\n    o, w = scaled_dot_product_attention(q, q, q)\n"
            "%timeit scaled_dot_product_attention(q, q, q)\nt = %time scaled_dot_product_attention(q, q, q)", 12,
            [stream("34.1 µs ± 1.2 µs per loop\n")])
    nb.code("", None)
    return nb.json()


def colab_multihead() -> dict:
    """Correct: multi-head attention written on a Colab GPU runtime, guarded with is_available()."""
    nb = Colab("multihead_attention.ipynb").md("# Multi-head attention with a KV cache")
    nb.code(COLAB_FIRST, 1, [stream("Drive already mounted at /content/drive; to attempt to forcibly remount, call drive.mount(\"/content/drive\", force_remount=True).\n")])
    nb.code(DEVICE, 2, [stream("Using cuda\n")])
    nb.code(MULTIHEAD, 3)
    nb.code("mha = MultiHeadAttention(32, 4).to(device)\nx = torch.randn(2, 6, 32, device=device)\ny, cache = mha(x, causal=True, use_cache=True)\n"
            "print(y.shape, cache[0].shape)", 4, [stream("torch.Size([2, 6, 32]) torch.Size([2, 4, 6, 8])\n")])
    nb.code("if torch.cuda.is_available():\n    mha = mha.cuda()\n    print(torch.cuda.get_device_name(0))", 5, [stream("Tesla T4\n")])
    return nb.json()


def classic_attention() -> dict:
    """Correct: classic Jupyter (nbformat 4.4), magics and a help line."""
    nb = Lab("attention-classic", minor=4).md("Attention")
    nb.code("%matplotlib inline\nimport numpy as np", 1)
    nb.code(ATTENTION, 2)
    nb.code("scaled_dot_product_attention??", 3)
    return nb.json()


def colab_download_py() -> str:
    """Correct: what Colab's File > Download > Download .py writes (shell lines commented out)."""
    return ('# -*- coding: utf-8 -*-\n"""attention.ipynb\n\nAutomatically generated by Colab.\n\nOriginal file is located at\n'
            '    https://colab.research.google.com/drive/1aBcDeFgHiJkLmNoPqRsTuVwXyZ012345\n\n'
            '# Homework 3: scaled dot-product attention\n"""\n\n' + COLAB_FIRST + "\n\n# !pip install -q torch\n\n"
            + DEVICE + "\n\n" + ATTENTION + "\n\nq = torch.randn(2, 4, 8, device=device)\n"
            "out, w = scaled_dot_product_attention(q, q, q)\n\nimport matplotlib.pyplot as plt\n"
            "plt.imshow(w[0].detach().cpu())\nplt.show()\n")


def nbconvert_script_py() -> str:
    """Correct: what `jupyter nbconvert --to script` writes (magics become get_ipython() calls)."""
    return ("#!/usr/bin/env python\n# coding: utf-8\n\n# # Attention\n\n# In[1]:\n\n\n"
            "get_ipython().run_line_magic('matplotlib', 'inline')\nget_ipython().system('pip install torch')\n"
            "get_ipython().run_line_magic('load_ext', 'autoreload')\n\n\n# In[3]:\n\n\n" + ATTENTION
            + "\n\n\n# In[2]:\n\n\nfiles = get_ipython().getoutput('ls')\n"
            "get_ipython().run_cell_magic('bash', '', 'nvidia-smi\\n')\ndisplay(len(files))\n")


# broken notebooks: name -> (notebook, what the test expects is in the message)

def broken() -> dict:
    out = {}
    nb = Colab("gpu_unguarded.ipynb").md("# Attention")
    nb.code("import torch\ndevice = 'cuda'", 1)
    nb.code(ATTENTION, 2)
    nb.code("q = torch.randn(2, 4, 8).to(device)\nout, w = scaled_dot_product_attention(q, q, q)", 3)
    out["gpu_unguarded"] = nb.json()

    nb = Colab("gpu_in_function.ipynb").md("# Attention")
    nb.code(ATTENTION.replace("    d_k = q.size(-1)\n", "    q, k, v = q.cuda(), k.cuda(), v.cuda()\n    d_k = q.size(-1)\n"), 1)
    out["gpu_in_function"] = nb.json()

    nb = Colab("drive_data.ipynb").md("# Attention").code(COLAB_FIRST, 1, [stream("Mounted at /content/drive\n")])
    nb.code(ATTENTION, 2)
    nb.code("batch = torch.load('/content/drive/MyDrive/LLM course/hw3/batch.pt')\nout, w = scaled_dot_product_attention(*batch)", 3)
    out["drive_data"] = nb.json()

    nb = Lab("download").md("# Attention").code(ATTENTION, 1)
    nb.code("import urllib.request\nurllib.request.urlretrieve('https://example.org/glove.6B.50d.txt', 'glove.txt')", 2)
    out["download"] = nb.json()

    nb = Lab("training").md("# Attention").code(ATTENTION, 3)
    nb.code("# train a tiny model for a while\nW = torch.randn(64, 64, requires_grad=True)\nopt = torch.optim.SGD([W], lr=1e-3)\n"
            "for epoch in range(10_000_000):\n    x = torch.randn(32, 64)\n    loss = (x @ W).pow(2).mean()\n"
            "    opt.zero_grad(); loss.backward(); opt.step()", 4)
    out["training"] = nb.json()

    nb = Lab("syntax").md("# Attention").code(ATTENTION, 1)
    nb.code("def check(:\n    pass", 2)
    out["syntax"] = nb.json()

    nb = Colab("pip_module.ipynb").md("# Attention").code("!pip install -q einops wandb", 1)
    nb.code("%env WANDB_MODE=offline\nimport torch\nfrom einops import rearrange", 2)
    nb.code(ATTENTION, 3)
    out["pip_module"] = nb.json()

    nb = Lab("main_guard", minor=4).md("# Attention").code("import math\nimport torch", 1)
    nb.code('if __name__ == "__main__":\n' + "\n".join("    " + ln if ln else ln for ln in ATTENTION.split("\n")), 2)
    out["main_guard"] = nb.json()

    nb = Lab("out_of_order").md("# Attention")
    nb.code("import torch\nq = torch.randn(2, 3, 4)\nout, w = scaled_dot_product_attention(q, q, q)", 2)
    nb.code(ATTENTION, 1)
    out["out_of_order"] = nb.json()
    return out


def notebooks() -> dict[str, str]:
    """File name -> the text written."""
    good = {"colab_attention": colab_attention(), "lab_attention": lab_attention(), "classic_attention": classic_attention(),
            "colab_multihead": colab_multihead()}
    out = {f"{name}.ipynb": json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
           for name, nb in {**good, **{f"broken_{k}": v for k, v in broken().items()}}.items()}
    out["colab_download.py"] = colab_download_py()
    out["nbconvert_script.py"] = nbconvert_script_py()
    return out


def main(out: Path = HERE) -> None:
    for name, text in notebooks().items():
        (out / name).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
