"""What the grading path announces, for whoever counts it: ops connects its metrics in
``OpsConfig.ready()``, so the grading path imports no app that reads the grading state back.

Both are sent inside the transaction that commits the fact they report, so what a receiver writes
commits (or rolls back) with it. ``kind`` is the job kind's name (submission, quiz answer, quiz check).
"""
from django.dispatch import Signal

# queue, kind, status ("graded" | "error"), result (the engine's dict), latency_s (queued -> result, or None)
result_saved = Signal()
# queue, kind, final (False: retried; True: given up as an error, or the previous result stands)
infrastructure_fault = Signal()
