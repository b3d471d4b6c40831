"""Stand-ins for what notebooks use but the grader does not have: Colab's ``google.colab``, IPython's
``get_ipython()``/``display()``, ``tqdm.notebook`` progress bars, and the runtime helpers the notebook
conversion (grader/intake/notebook.py) calls (``files = !ls``, ``%%writefile``, ``%%capture out``).

Both sides import this module:

* **In the sandbox** (the zygote imports it before forking, like ``grader.sandbox.child``): ``install()``
  runs in P before the submission is imported. ``google.colab`` and its submodules are served by an
  import hook (they are not put in ``sys.modules`` ahead of time, so ``"google.colab" in
  sys.modules`` still tells a notebook it is not in Colab). Every Colab function does nothing,
  returns nothing (``files.upload()`` an empty dict, ``userdata.get`` an empty string) and records
  *which* function was called. Nothing of the student's Drive, files or secrets is reachable.
  A notebook executed by nbclient gets the same stand-ins from ``kernel_cell()``.
* **In the trusted process**: the sandbox reports only the *keys* of what was called
  (``"drive.mount"``); ``notes_for(keys)`` turns them into notes from the templates below, so no
  student string reaches the feedback through this path.
"""
from __future__ import annotations

import builtins
import importlib
import importlib.abc
import importlib.machinery
import os
import re
import sys
import threading
import types
import warnings
from pathlib import Path

# --------------------------------------------------------------------------- notes (trusted templates)

_DRIVE = "the grader has no access to your Google Drive (nothing under /content/drive exists here)"
TEMPLATES = {
    "drive.mount": f"drive.mount was skipped: {_DRIVE}.",
    "drive.flush_and_unmount": f"drive.flush_and_unmount was skipped: {_DRIVE}.",
    "files.upload": "files.upload() was skipped and returned no files: nothing can be uploaded while grading.",
    "files.download": "files.download was skipped: the grader does not send files to your computer.",
    "files.view": "files.view was skipped: it works only in Colab.",
    "userdata.get": "userdata.get returned an empty string: the grader has no access to your Colab secrets.",
    "auth.authenticate_user": "auth.authenticate_user was skipped: the grader does not sign in to Google.",
    "ipython.system": "get_ipython().system(...) was skipped: shell commands do not run in the grader.",
    "ipython.getoutput": "get_ipython().getoutput(...) was skipped and returned an empty list: shell commands "
                         "do not run in the grader.",
    "ipython.run_line_magic": "get_ipython().run_line_magic(...) was skipped: IPython magics do not run in the grader.",
    "ipython.run_cell_magic": "get_ipython().run_cell_magic(...) was skipped: IPython magics do not run in the grader.",
    "ipython.magic": "get_ipython().magic(...) was skipped: IPython magics do not run in the grader.",
    "writefile.failed": "a %%writefile cell could not write its file (the grader's scratch folder is the only "
                        "writable place: use a relative path such as helper.py).",
}
_KEY = re.compile(r"^(colab|ipython)\.[A-Za-z_][A-Za-z0-9_]{0,40}(\.[A-Za-z_][A-Za-z0-9_]{0,40}){0,2}$")
MAX_KEYS = 40


def note_for(key) -> str | None:
    """The note for one reported key, or None for a key that is not well-formed."""
    if not isinstance(key, str) or len(key) > 120:
        return None
    if key in TEMPLATES:
        return TEMPLATES[key]
    short = key.split(".", 1)[1] if key.startswith("colab.") else key
    if short in TEMPLATES:
        return TEMPLATES[short]
    if not _KEY.match(key):
        return None
    kind, name = key.split(".", 1)
    if kind == "colab":
        return f"google.colab.{name} was skipped: it works only in Colab."
    return f"get_ipython().{name} was skipped: it works only in Jupyter."


def notes_for(keys) -> list[str]:
    """Notes for the keys a sandbox reported (unknown or malformed keys are dropped)."""
    out: list[str] = []
    if not isinstance(keys, list):
        return out
    for key in keys[:MAX_KEYS]:
        text = note_for(key)
        if text and text not in out:
            out.append(text)
    return out


# --------------------------------------------------------------------------- what was called (sandbox)

_USED: list[str] = []


def _use(key: str) -> None:
    if key not in _USED and len(_USED) < MAX_KEYS:
        _USED.append(key)


def used() -> list[str]:
    """The keys of the stand-ins called so far in this process."""
    return list(_USED)


class _Inert:
    """What an unknown Colab function returns: usable as a context manager (``with output.use_tags():``,
    ``with grid.output_to(0, 0):``), callable, iterable (empty) and false; every attribute is itself."""

    def __call__(self, *args, **kwargs):
        return self

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __iter__(self):
        return iter(())

    def __bool__(self):
        return False

    def __len__(self):
        return 0

    def __repr__(self) -> str:
        return "<grader stand-in: does nothing outside Colab>"


_INERT = _Inert()


class _Skipped:
    """A Colab/IPython function (or anything reached from one) that does nothing in the grader."""

    def __init__(self, key: str, result=None):
        self._key, self._result = key, result

    def __call__(self, *args, **kwargs):
        _use(self._key)
        return self._result() if isinstance(self._result, type) else self._result

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Skipped(f"{self._key}.{name}"[:120], _INERT)

    def __repr__(self) -> str:
        return f"<grader stand-in for {self._key}>"


class _StandInModule(types.ModuleType):
    """A Colab module: its named functions are below; any other name is a do-nothing function."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        if self.__name__ == "google.colab":  # its names are submodules (drive, files, userdata, output, ...)
            return importlib.import_module(f"google.colab.{name}")
        short = self.__name__[len("google.colab."):]
        return _Skipped(f"colab.{short}.{name}", _INERT)


class SecretNotFoundError(Exception):
    """As google.colab.userdata.SecretNotFoundError (never raised by the stand-in)."""


class NotebookAccessError(Exception):
    """As google.colab.userdata.NotebookAccessError (never raised by the stand-in)."""


def _colab_module(name: str) -> types.ModuleType:
    mod = _StandInModule(name, "The grader's stand-in: does nothing outside Colab.")
    mod.__path__ = []
    short = name[len("google.colab."):] if name.startswith("google.colab.") else ""
    if short == "drive":
        mod.mount = _Skipped("colab.drive.mount")
        mod.flush_and_unmount = _Skipped("colab.drive.flush_and_unmount")
    elif short == "files":
        mod.upload = _Skipped("colab.files.upload", dict)
        mod.download = _Skipped("colab.files.download")
        mod.view = _Skipped("colab.files.view")
    elif short == "userdata":
        mod.get = _Skipped("colab.userdata.get", str)
        mod.SecretNotFoundError = SecretNotFoundError
        mod.NotebookAccessError = NotebookAccessError
    elif short == "auth":
        mod.authenticate_user = _Skipped("colab.auth.authenticate_user")
    return mod


class _ColabFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves google.colab (any depth) and, when no real ``google`` package exists, ``google``."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname == "google" or fullname == "google.colab" or fullname.startswith("google.colab."):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        if spec.name == "google":
            mod = types.ModuleType("google")
            mod.__path__ = []
            return mod
        return _colab_module(spec.name)

    def exec_module(self, module):
        return None


# --------------------------------------------------------------------------- IPython stand-ins (sandbox)

class SList(list):
    """What ``files = !ls`` gives in IPython (here always empty: shell commands do not run)."""

    @property
    def s(self):
        return " ".join(self)

    @property
    def n(self):
        return "\n".join(self)

    p = n
    l = list = property(lambda self: self)  # noqa: E741

    def grep(self, *args, **kwargs):
        return SList()

    def fields(self, *args):
        return SList()


class _IPythonStandIn:
    """What ``get_ipython()`` returns in the grader: every method does nothing."""

    def system(self, *args, **kwargs):
        _use("ipython.system")
        return None

    def getoutput(self, *args, **kwargs):
        _use("ipython.getoutput")
        return SList()

    def run_line_magic(self, *args, **kwargs):
        _use("ipython.run_line_magic")
        return None

    def run_cell_magic(self, *args, **kwargs):
        _use("ipython.run_cell_magic")
        return None

    def magic(self, *args, **kwargs):
        _use("ipython.magic")
        return None

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Skipped(f"ipython.{name}", _INERT)

    def __repr__(self) -> str:
        return "<the grader's stand-in for get_ipython(): not an IPython kernel>"


_IPYTHON = _IPythonStandIn()


def get_ipython():
    return _IPYTHON


def display(*objs, **kwargs):
    """IPython's display(): nothing is displayed while grading."""
    return None


class CapturedIO:
    """What ``%%capture out`` binds: the grader keeps no captured output."""

    stdout = ""
    stderr = ""
    outputs: list = []

    def show(self):
        return None

    __call__ = show


def shell(*args, **kwargs) -> SList:
    """``files = !ls`` in a converted notebook: shell commands do not run; an empty list."""
    return SList()


def writefile(path: str, text: str, append: bool = False) -> None:
    """``%%writefile [-a] path``: writes the file into the sandbox's scratch folder, as Jupyter would
    write it next to the notebook, so a module written this way can be imported by a later cell."""
    try:
        target = os.path.expanduser(str(path))
        folder = os.path.dirname(target)
        if folder:
            os.makedirs(folder, exist_ok=True)
        with open(target, "a" if append else "w", encoding="utf-8") as fh:
            fh.write(text)
    except (OSError, ValueError):
        _use("writefile.failed")
        return None
    importlib.invalidate_caches()  # a module written a moment ago must be importable now
    return None


def run_path(path: str) -> dict:
    """``%run script.py`` in a converted notebook: run the script as ``__main__`` and return its
    names (IPython copies them into the notebook's namespace). Another notebook cannot be run."""
    import runpy

    path = str(path)
    if path.endswith(".ipynb"):
        raise ImportError(f"%run of another notebook ({path[:100]}) is not supported by the grader: "
                          "put the code you need in this notebook")
    names = runpy.run_path(path, run_name="__main__")
    return {k: v for k, v in names.items() if not k.startswith("__")}


# --------------------------------------------------------------------------- tqdm.notebook

def _tqdm_notebook_module():
    """tqdm.notebook needs Jupyter widgets to draw; in the grader it is tqdm without a bar."""
    from tqdm import std

    class tqdm(std.tqdm):  # noqa: N801  (tqdm's own name)
        def __init__(self, *args, **kwargs):
            kwargs.setdefault("disable", True)
            super().__init__(*args, **kwargs)

        def display(self, *args, **kwargs):
            return None

    def trange(*args, **kwargs):
        return tqdm(range(*args), **kwargs)

    mod = types.ModuleType("tqdm.notebook", "The grader's tqdm.notebook: progress bars are not drawn.")
    mod.tqdm = mod.tqdm_notebook = tqdm
    mod.trange = mod.tnrange = trange
    mod.__all__ = ["tqdm", "trange", "tqdm_notebook", "tnrange"]
    return mod


class _TqdmFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        if fullname == "tqdm.notebook":
            return importlib.machinery.ModuleSpec(fullname, self)
        return None

    def create_module(self, spec):
        return _tqdm_notebook_module()

    def exec_module(self, module):
        return None


# --------------------------------------------------------------------------- install

def preload() -> None:
    """Imported by the zygote before it forks: what nearly every notebook imports, so that a
    sandbox does not pay for it (matplotlib builds its font list on first import, seconds)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot  # noqa: F401
    except Exception:  # noqa: BLE001  matplotlib missing or broken: notebooks import it themselves
        pass
    try:
        import tqdm.std  # noqa: F401
    except Exception:  # noqa: BLE001
        pass


_INSTALLED = False


def install(kernel: bool = False) -> None:
    """Make notebook code work in this process. ``kernel``: an IPython kernel (nbclient), which has
    its own get_ipython() and display(); only Colab and tqdm.notebook are replaced there."""
    global _INSTALLED
    if _INSTALLED:
        return
    _INSTALLED = True
    sys.meta_path.append(_ColabFinder())
    sys.meta_path.insert(0, _TqdmFinder())
    if "tqdm.notebook" in sys.modules:
        try:
            sys.modules["tqdm.notebook"] = mod = _tqdm_notebook_module()
            sys.modules["tqdm"].notebook = mod
        except Exception:  # noqa: BLE001  tqdm missing: nothing to replace
            pass
    warnings.filterwarnings("ignore", message=r".*non-interactive, and thus cannot be shown")
    warnings.filterwarnings("ignore", message=r"More than \d+ figures have been opened")
    warnings.filterwarnings("ignore", message=r"IProgress not found")
    if kernel:
        return
    builtins.get_ipython = get_ipython
    builtins.display = display
    builtins.__grader_nb__ = sys.modules[__name__]  # what converted notebooks call (grader/intake/notebook.py)


# --------------------------------------------------------------------------- a sandbox import watchdog

_current_frames = sys._current_frames  # bound now: the submission may replace sys._current_frames


class Watchdog:
    """Stops an import that runs out of time *from inside the sandbox*, a moment before the trusted
    side's deadline, and reports where the main thread was (so a notebook's timeout names the cell
    that was running). ``report(frames)`` sends the error reply; the process then exits.
    A thread is used (not SIGALRM) so that it also fires while the main thread waits in a C call
    that releases the GIL (torch, sleep, I/O)."""

    def __init__(self, seconds: float, report):
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._main = threading.main_thread().ident
        self._report = report
        self._thread = threading.Thread(target=self._run, args=(max(0.05, float(seconds)),), daemon=True,
                                        name="grader-watchdog")
        self._thread.start()

    def _run(self, seconds: float) -> None:
        if self._stop.wait(seconds):
            return
        if not self._lock.acquire(blocking=False):
            return  # the import finished just now
        try:
            frames = []
            try:
                frame = _current_frames().get(self._main)
                while frame is not None and len(frames) < 200:
                    frames.append((str(frame.f_code.co_filename), int(frame.f_lineno or 0), str(frame.f_code.co_name)))
                    frame = frame.f_back
            except BaseException:  # noqa: BLE001  report the timeout even when the stack cannot be read
                frames = []
            frames.reverse()  # outermost first, as in a traceback
            self._report(frames)
        finally:
            os._exit(0)

    def stop(self) -> None:
        """Called by the main thread when the import is over (blocks for good if the watchdog fired)."""
        self._lock.acquire()
        self._stop.set()


# --------------------------------------------------------------------------- the same stand-ins in a kernel

KERNEL_NAME = "_grader_nbshim"
NOTES_MIME = "application/vnd.courseplatform.nbshim+json"


def _read_source() -> str | None:
    if __name__ == KERNEL_NAME:
        return None
    try:
        return Path(__file__).read_text(encoding="utf-8")
    except (OSError, NameError):
        return None


_SOURCE = _read_source()


def kernel_cell() -> str | None:
    """Code for a hidden first cell of an executed notebook: this module, run as ``_grader_nbshim``
    in the kernel, installs the Colab and tqdm stand-ins there."""
    if _SOURCE is None:
        return None
    return ("# installed by the grader: stand-ins for Colab-only modules\n"
            "import sys as __grader_sys, types as __grader_types\n"
            f"__grader_sys.modules[{KERNEL_NAME!r}] = __grader_m = __grader_types.ModuleType({KERNEL_NAME!r})\n"
            f"exec(compile({_SOURCE!r}, '<grader nbshim>', 'exec'), __grader_m.__dict__)\n"
            "__grader_m.install(kernel=True)\n"
            "del __grader_sys, __grader_types, __grader_m\n")


def kernel_report_cell() -> str:
    """Code for a hidden last cell: displays the keys of the stand-ins the notebook called."""
    return ("import sys as __grader_sys\n"
            "from IPython.display import display as __grader_display\n"
            f"__grader_display({{{NOTES_MIME!r}: {{'used': getattr(__grader_sys.modules.get({KERNEL_NAME!r}), "
            "'used', list)()}}, raw=True)\n"
            "del __grader_sys, __grader_display\n")


def kernel_reported(cell) -> list[str]:
    """The keys found in the outputs of the hidden last cell (empty when it failed)."""
    for out in cell.get("outputs", []) or []:
        data = out.get("data") if isinstance(out, dict) else None
        if isinstance(data, dict) and isinstance(data.get(NOTES_MIME), dict):
            keys = data[NOTES_MIME].get("used")
            if isinstance(keys, list):
                return [k for k in keys[:MAX_KEYS] if isinstance(k, str) and len(k) <= 120]
    return []
