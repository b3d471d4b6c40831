#!/usr/bin/env bash
# Which container privileges the grading sandbox needs: grades one correct attention submission
# with the real engine (`python -m grader grade`) inside the worker image under a series of
# privilege sets, from none up, and prints for each whether it graded and the engine's report of the
# limits in force, or the first error line. How compose.yml's worker privileges were found (README,
# "Production: docker/"). Needs a built image (scripts/compose_smoke.sh builds courseplatform:smoke).
#
#   scripts/worker_privileges.sh [IMAGE]
set -uo pipefail
cd "$(dirname "$0")/.."
IMAGE="${1:-courseplatform:smoke}"
DOCKER="${DOCKER:-$( [ -x /usr/bin/docker ] && echo /usr/bin/docker || echo docker )}"
SECCOMP="$PWD/docker/seccomp-worker.json"

# name | docker run flags (the worker runs as root in its container, like compose's x-worker)
CASES=(
  "no extra privileges|"
  "SYS_ADMIN|--cap-add SYS_ADMIN"
  "SYS_ADMIN, cgroups rw|--cap-add SYS_ADMIN --entrypoint docker/worker-entrypoint.sh"
  "SYS_ADMIN+NET_ADMIN, cgroups rw|--cap-add SYS_ADMIN --cap-add NET_ADMIN --entrypoint docker/worker-entrypoint.sh"
  "SYS_ADMIN+NET_ADMIN, cgroups rw, seccomp-worker.json|--cap-add SYS_ADMIN --cap-add NET_ADMIN --security-opt seccomp=$SECCOMP --entrypoint docker/worker-entrypoint.sh"
  "SYS_ADMIN, cgroups rw, seccomp-worker.json|--cap-add SYS_ADMIN --security-opt seccomp=$SECCOMP --entrypoint docker/worker-entrypoint.sh"
  "SYS_ADMIN, cgroups rw, seccomp unconfined|--cap-add SYS_ADMIN --security-opt seccomp=unconfined --entrypoint docker/worker-entrypoint.sh"
)
[ -n "${PRIV_CASES:-}" ] && mapfile -t CASES <<<"$PRIV_CASES"

for c in "${CASES[@]}"; do
  name="${c%%|*}"
  flags="${c#*|}"
  # shellcheck disable=SC2086
  # shellcheck disable=SC2086
  out="$("$DOCKER" run --rm --user root -v "$PWD/docker/worker-entrypoint.sh:/app/docker/worker-entrypoint.sh:ro" \
         -e GRADER_POOL_SIZE=1 -e GRADER_TRUSTED_MEMORY_MB=3072 $flags "$IMAGE" sh -c '
           python -m grader grade assignments/attention assignments/attention/solutions/einsum.py --json
           printf "while True:\n    pass\n" >/tmp/attention.py  # and one that never ends: the time limit
           python -m grader grade assignments/attention /tmp/attention.py --json' 2>&1)"
  res="$(printf '%s\n' "$out" | grep '^{' | head -n1 || true)"
  spin="$(printf '%s\n' "$out" | grep '^{' | sed -n 2p || true)"
  if [ -n "$res" ] && printf '%s' "$res" | jq -e '.score == .max_score' >/dev/null 2>&1; then
    printf '%-58s graded %s\n' "$name" "$(printf '%s' "$res" | jq -c '{sandbox: .engine.sandbox, cgroup: .engine.limits.cgroup, seccomp: .engine.limits.seccomp, keyring: .engine.limits.keyring}')"
    if [ -n "$spin" ]; then
      printf '%-58s endless loop: %s\n' "" "$(printf '%s' "$spin" | jq -r '"\(.score)/\(.max_score) \(.message)"' | head -c 200)"
    else
      printf '%-58s endless loop: FAILED %s\n' "" "$(printf '%s\n' "$out" | grep -v '^\s*$' | tail -n 1 | head -c 300)"
    fi
  elif [ -n "$res" ]; then
    printf '%-58s NOT graded: %s\n' "$name" "$(printf '%s' "$res" | jq -r '.message' | head -c 400)"
  else
    printf '%-58s FAILED: %s\n' "$name" "$(printf '%s\n' "$out" | grep -v '^\s*$' | tail -n 1 | head -c 400)"
  fi
done
