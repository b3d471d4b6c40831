"""Engine-test driver (kernel limits): calls probe(info) and reports what it returned in a note (JSON)."""
import json
import os

from grader.authoring import case


@case(points=1)
def probe(ctx):
    """probe() runs and returns"""
    info = {"pack_dir": str(ctx.pack_dir), "trusted_pid": os.getpid(), "args": os.environ.get("H1_PROBE_ARG", "")}
    value = ctx.sub.call("probe", info)
    ctx.note("PROBE:" + json.dumps(value, default=repr))
