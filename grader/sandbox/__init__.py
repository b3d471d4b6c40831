"""The sandbox: where a submission runs, and nothing a pack author needs to read.

- ``pool``: the trusted side; the process-wide pool of warm sandboxes per (queue, preload), the CPU
  meter, ``SandboxUnavailable``.
- ``zygote``: the sandbox parent (``python -m grader.sandbox.zygote``), started by the pool with a
  scrubbed environment; it preloads torch and forks the sandboxes.
- ``child``: the server inside one sandbox (imports the submission, serves the driver's calls).
- ``isolation`` (namespaces, mounts, uid), ``cgroups`` (memory, processes, CPU), ``seccomp`` (the
  syscall filter): the kernel limits.
- ``protocol``: the framed messages between the trusted process and a sandbox.

Everything the child imports is imported by the zygote before it forks: the grader's own source is
not visible inside the sandbox. See grader/README.md, "The sandbox" and "Sandbox security".
"""
