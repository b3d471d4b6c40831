#!/bin/sh
# Entry point of the grading workers (compose.yml, x-worker): makes the container's own cgroup tree
# writable, then runs the worker's command.
#
# The sandbox puts every submission in a cgroup of its own below the worker's (memory, pids, cpu:
# grader/README.md). Docker mounts a container's cgroup tree read-only. A worker has CAP_SYS_ADMIN
# anyway (the sandbox's namespaces need it), and with it the container remounts its own cgroup
# mounts read-write, here, in its own mount namespace: nothing of the host changes, and what the
# container sees of each hierarchy is still only its own group (Docker mounts that group as the root
# of /sys/fs/cgroup/<controller>), under the limits Docker set on it (mem_limit, pids), which the
# sandboxes' groups nest below. No privileged mode, no bind mount of the host's /sys/fs/cgroup.
set -eu
# Only the hierarchies the sandbox uses: v1 memory, pids, cpu and cpuacct (never "devices": a writable
# devices group would let the container widen its own device access), or the v2 unified tree.
if [ "$(id -u)" = 0 ] && [ -d /sys/fs/cgroup ]; then
  awk '$3 == "cgroup2" || ($3 == "cgroup" && $4 ~ /(^|,)(memory|pids|cpu|cpuacct)(,|$)/) { print $2 }' /proc/self/mounts |
  while read -r mnt; do
    if grep -qE "^[^ ]+ $mnt [^ ]+ ro[, ]" /proc/self/mounts; then
      mount -o remount,bind,rw "$mnt" || echo "worker-entrypoint: cannot remount $mnt read-write" >&2
    fi
  done
fi
exec "$@"
