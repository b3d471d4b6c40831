"""courseplatform's grading engine: sandboxed, warm-pooled grading of assignment packs.

No Django import anywhere in this package. See grader/README.md. Two public surfaces, each named in
one module: ``grader.api`` for the platform (``grade(pack_dir, filename, data, *, slug=None,
only_visible=False)`` and everything else the platform uses) and ``grader.authoring`` for a pack's
``tests.py``. The rest is the engine's own: ``sandbox`` (where a submission runs), ``intake`` (an
upload made code) and ``similarity`` (copy detection, which the platform reaches as
``grader.api.similarity``).
"""
