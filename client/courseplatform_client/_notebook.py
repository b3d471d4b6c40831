"""Which notebook is "this notebook", and its JSON.

Supported, in this order:
1. ``COURSEPLATFORM_NOTEBOOK=<path>``: that file (an explicit override).
2. Google Colab: the live notebook, unsaved edits included, through Colab's front-end request
   ``google.colab._message.blocking_request('get_ipynb', request='', timeout_sec=...)``, whose
   answer is ``{'ipynb': <notebook JSON>}``.
3. Jupyter Server (JupyterLab, Notebook 7, VS Code's Jupyter): the notebook *file* of the running
   kernel, as last saved. Jupyter Server tells the kernel its notebook through the
   ``JPY_SESSION_NAME`` environment variable, which ipykernel also exposes as ``__session__``.
4. Older Jupyter servers: the running servers listed in the Jupyter runtime directory
   (``jpserver-*.json`` / ``nbserver-*.json``) are asked for ``/api/sessions``; the session whose
   kernel id is this kernel's (from its connection file) names the notebook.
Outputs are not sent (the grader runs the code itself); this keeps large plots under the size limit.
"""
from __future__ import annotations

import glob
import json
import os
import sys
import urllib.request

from ._api import EXIT_REFUSED, ClientError


def ipython():
    """The running IPython shell, or None (plain Python, a terminal)."""
    mod = sys.modules.get("IPython")
    if mod is None:
        return None
    try:
        return mod.get_ipython()
    except Exception:  # noqa: BLE001 - an IPython without a shell
        return None


def in_kernel():
    """True inside a notebook kernel (Jupyter, Colab): rich output is possible."""
    shell = ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _colab_message():
    try:
        from google.colab import _message  # type: ignore
    except ImportError:
        return None
    return _message


def strip_outputs(nb):
    if isinstance(nb, dict):
        for cell in nb.get("cells") or []:
            if isinstance(cell, dict) and cell.get("cell_type") == "code":
                cell["outputs"] = []
                cell["execution_count"] = None
    return nb


def _session_path():
    shell = ipython()
    path = None
    if shell is not None:
        path = shell.user_ns.get("__session__")
    path = path or os.environ.get("JPY_SESSION_NAME")
    if not path or not isinstance(path, str):
        return None
    if os.path.isfile(path):
        return path
    # Relative to the server's root: the kernel usually starts in the notebook's folder.
    base = os.path.basename(path)
    return base if os.path.isfile(base) else None


def _kernel_id():
    try:
        from ipykernel import get_connection_file  # type: ignore

        name = os.path.basename(get_connection_file())
    except Exception:  # noqa: BLE001 - not an ipykernel
        return None
    if name.startswith("kernel-") and name.endswith(".json"):
        return name[len("kernel-"):-len(".json")]
    return None


def _runtime_dirs():
    dirs = []
    if os.environ.get("JUPYTER_RUNTIME_DIR"):
        dirs.append(os.environ["JUPYTER_RUNTIME_DIR"])
    try:
        from jupyter_core.paths import jupyter_runtime_dir  # type: ignore

        dirs.append(jupyter_runtime_dir())
    except Exception:  # noqa: BLE001
        pass
    dirs.append(os.path.join(os.path.expanduser("~"), ".local", "share", "jupyter", "runtime"))
    return dirs


def _server_sessions_path():
    kernel_id = _kernel_id()
    if not kernel_id:
        return None
    seen = set()
    for d in _runtime_dirs():
        for info_file in sorted(glob.glob(os.path.join(d, "jpserver-*.json")) + glob.glob(os.path.join(d, "nbserver-*.json"))):
            if info_file in seen:
                continue
            seen.add(info_file)
            try:
                with open(info_file, encoding="utf-8") as fh:
                    info = json.load(fh)
                req = urllib.request.Request(info["url"].rstrip("/") + "/api/sessions")
                if info.get("token"):
                    req.add_header("Authorization", "token " + info["token"])
                with urllib.request.urlopen(req, timeout=3) as resp:
                    sessions = json.loads(resp.read().decode("utf-8"))
            except Exception:  # noqa: BLE001 - a stale or password-protected server: try the next
                continue
            for s in sessions if isinstance(sessions, list) else []:
                if (s.get("kernel") or {}).get("id") == kernel_id:
                    rel = s.get("path") or (s.get("notebook") or {}).get("path")
                    root = info.get("root_dir") or info.get("notebook_dir") or ""
                    if rel:
                        full = os.path.join(root, rel)
                        if os.path.isfile(full):
                            return full
    return None


def unguarded_client_import(data):
    """The number (1-based) of the first code cell that imports courseplatform_client at its top
    level, outside ``try``/``if``: the grader has no client, so such a notebook cannot be graded.
    None if there is none (or the data is not a notebook)."""
    import ast

    try:
        nb = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None
    cells = nb.get("cells") if isinstance(nb, dict) else None
    for number, cell in enumerate(cells if isinstance(cells, list) else [], start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        src = cell.get("source")
        src = "".join(src) if isinstance(src, list) else str(src or "")
        lines = ["" if ln.lstrip().startswith(("%", "!")) else ln for ln in src.splitlines()]
        try:
            tree = ast.parse("\n".join(lines))
        except (SyntaxError, ValueError):
            continue
        for node in tree.body:
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            if any(name.split(".")[0] == "courseplatform_client" for name in names):
                return number
    return None


def current_notebook(default_name, action="submit"):
    """(file name, bytes, where it came from) of the notebook this code runs in. `action` ("submit"
    or "check") is what the messages advise to call with a file: a failed check must never advise
    submit(), which spends an attempt."""
    action = "check" if action == "check" else "submit"
    override = os.environ.get("COURSEPLATFORM_NOTEBOOK")
    if override:
        return _from_file(override, "COURSEPLATFORM_NOTEBOOK")
    message = _colab_message()
    if message is not None:
        try:
            reply = message.blocking_request("get_ipynb", request="", timeout_sec=60)
        except Exception as exc:  # noqa: BLE001 - Colab's front end did not answer
            raise ClientError("Colab did not send the notebook (%s: %s); save it (File > Download .ipynb) and %s "
                              "the file instead." % (type(exc).__name__, str(exc)[:200], action), EXIT_REFUSED) from None
        nb = reply.get("ipynb") if isinstance(reply, dict) else None
        if not isinstance(nb, dict) or "cells" not in nb:
            raise ClientError("Colab sent no notebook (is this cell running in a Colab notebook?).", EXIT_REFUSED)
        data = json.dumps(strip_outputs(nb), ensure_ascii=False).encode("utf-8")
        return default_name, data, "this Colab notebook"
    path = _session_path() or _server_sessions_path()
    if path:
        return _from_file(path, "the notebook file of this kernel, as last saved")
    if in_kernel():
        raise ClientError("Cannot tell which notebook this kernel runs (not Colab, and no Jupyter server named it). "
                          "Save the notebook and pass its file: cp.%s(\"COURSE/ASSIGNMENT\", \"my.ipynb\")." % action,
                          EXIT_REFUSED)
    raise ClientError("Not running in a notebook: name the file to %s, e.g. %s(\"llms/attention\", "
                      "\"attention.py\")." % (action, action), EXIT_REFUSED)


def _from_file(path, where):
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise ClientError("Cannot read the notebook %s: %s" % (path, exc.strerror or exc), EXIT_REFUSED) from None
    try:
        nb = json.loads(raw.decode("utf-8"))
    except ValueError:
        return os.path.basename(path), raw, where  # the site explains what is wrong with it
    return os.path.basename(path), json.dumps(strip_outputs(nb), ensure_ascii=False).encode("utf-8"), where
