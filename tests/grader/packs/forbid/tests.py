"""Engine-test driver for [forbid]: three cases calling run(); the first also reports
ctx.source_files in a note (FILES: json)."""
import json

from grader.authoring import case, compare


@case(points=1)
def first(ctx):
    """run(1) returns 2"""
    ctx.note("FILES:" + json.dumps(ctx.source_files))
    compare.exact(ctx.sub.call("run", 1), 2, "run(1)")


@case(points=1)
def second(ctx):
    """run(2) returns 4"""
    compare.exact(ctx.sub.call("run", 2), 4, "run(2)")


@case(points=1, visible=False)
def third(ctx):
    """run(5) returns 10"""
    compare.exact(ctx.sub.call("run", 5), 10, "run(5)")
