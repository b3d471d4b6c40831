"""courseplatform's grading engine: sandboxed, warm-pooled grading of assignment packs.

No Django import anywhere in this package. See grader/README.md. The entry point is
``grader.api.grade(pack_dir, filename, data, *, slug=None, only_visible=False)``.
"""
