"""What turns an upload into code the sandbox can import, in the trusted process.

- ``submission``: ``decode(filename, data, ...)``, the one entry (``.py``, ``.ipynb``, ``.zip``).
- ``notebook``: a notebook's code cells as a module, with line maps for tracebacks and advice on
  load errors; also the readers of an executed notebook that drivers use.
- ``ziparchive``: the zip policy (sizes, names, nesting) for submissions and uploaded packs.
- ``forbid``: the ``[forbid]`` table: the source scan here, the stubs installed in the sandbox.
- ``nbshim``: the Colab/Jupyter stand-ins (``google.colab``, ``get_ipython()``, ``display()``)
  installed in the sandbox.

Nothing here executes the submission. See grader/README.md, "Notebooks" and "Forbidden APIs".
"""
