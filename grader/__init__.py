"""courseplatform's grading engine: sandboxed, warm-pooled grading of assignment packs.

No Django import anywhere in this package. See grader/README.md.
"""
__all__ = ["grade"]


def grade(pack_dir, filename, data):
    from grader.api import grade as _grade

    return _grade(pack_dir, filename, data)
