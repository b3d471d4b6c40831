"""One grading path for everything the engine grades: assignment submissions and their checks, quiz
code answers and quiz checks.

  jobs.py     the job interface (Kind: the task, the lease records, the engine's input, how a result
              is saved), the one enqueue and the one requeue
  worker.py   the one task body: claim, lease + heartbeat, engine call, retry policy, MAX_DELIVERIES
  sweeper.py  the one sweeper: lapsed leases, messages the broker lost, stuck jobs (every kind)
  checks.py   the one limit of "Check" (visible tests only, never an attempt)
  engine.py   the engine entry point (settings.GRADE_FUNCTION)
  packstore.py the trusted pack store, PACK_STORE/<name>/<hash>/: every pack is graded from a copy there
  models.py   the states (PENDING_STATES) and GradingJob, the lease record of the kinds whose own
              row has none (quiz answers and checks; a Submission is its own lease record)

Each app defines its kinds in its tasks module (submissions/tasks.py, quizzes/tasks.py) and queues
work by the kind's name, so the apps' services never import their tasks.
"""
