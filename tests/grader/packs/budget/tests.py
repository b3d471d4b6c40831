"""Engine-test driver for budgets and device facts, as bert_finetune uses them.

Promises and the case(s) that exercise each:
  work() must stay within BUDGET_S CPU seconds of the whole sandbox .......... within_budget
  the driver gets the worker's device from the trusted side ................. device_from_worker
"""
from grader.authoring import Fail, case

BUDGET_S = 2.0


@case(points=1, timeout=30)
def within_budget(ctx):
    """work() stays within its CPU budget"""
    start = ctx.sub.cpu_seconds()
    ctx.sub.call("work", BUDGET_S)
    used = ctx.sub.cpu_seconds() - start
    ctx.metric("work_seconds", used)
    peak = ctx.sub.memory_peak_mb()
    if peak is not None:
        ctx.metric("memory_peak_mb", peak)
    ctx.note(f"work() used {used:.2f} CPU seconds")
    if used > BUDGET_S:
        raise Fail(f"work() used {used:.1f} CPU seconds, over the budget of {BUDGET_S:g}.")


@case(points=1)
def device_from_worker(ctx):
    """the settings follow the worker's device"""
    ctx.note(f"DEVICE:{ctx.device}")
    seen = ctx.sub.call("device_seen")
    ctx.note(f"SANDBOX SAYS:{seen!r}")
