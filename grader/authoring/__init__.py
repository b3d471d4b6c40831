"""What a pack author writes against: the one public surface of a pack's ``tests.py``.

A pack's ``tests.py`` (and its mutants' and solutions' checks) imports from here and nowhere else in
the engine::

    from grader.authoring import Fail, case, compare

- ``case``: the decorator that declares a graded case (points, visibility, timeout, hint, seed).
- ``Context``: what a case receives (``ctx.sub`` proxies the submission in the sandbox, ``ctx.ref``
  is the pack's ``reference.py``, ``ctx.rng``, ``ctx.metric()``, ...); ``Handle``: an object that
  stays in the sandbox.
- ``Fail``: raise it with a student-facing message; ``StudentError``: an exception raised by the
  student's code (a ``Fail``); ``SandboxCrash``/``SandboxTimeout``: the sandbox died or ran out of time.
- ``compare``: the comparison helpers, each raising ``Fail`` with a message that names the problem
  (it imports torch, so it is imported when a pack asks for it).
- ``notebook``: readers of an executed notebook (``code_cells``, ``cell_text``, ``stream_text``,
  ``errors``, ``images``).

The rest of this package is the engine's side of the same contract: ``driver`` (the runner),
``pack`` (``assignment.toml`` validation, loading a pack) and ``check`` (``python -m grader check``).
See grader/README.md, "Writing tests.py".
"""
from grader.authoring.driver import Context, Fail, Handle, SandboxCrash, SandboxTimeout, StudentError, case
from grader.intake import notebook

__all__ = ["case", "Context", "Handle", "Fail", "StudentError", "SandboxCrash", "SandboxTimeout",
           "compare", "notebook"]
