#!/usr/bin/env bash
# scripts/test_repeat.sh N [--load] [--random]: run the whole suite N times in a row and print a
# table of the outcome of every run (exit status, duration, failures by test id). --load keeps
# every core busy with a separate process during the runs; --random shuffles the order each run.
set -uo pipefail
cd "$(dirname "$0")/.."
runs="${1:-5}"; shift || true
load=0; random=0
for a in "$@"; do
  case "$a" in --load) load=1 ;; --random) random=1 ;; *) echo "unknown option $a" >&2; exit 2 ;; esac
done
out="var/test-repeat/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$out"
loaders=()
if [ "$load" = 1 ]; then
  for _ in $(seq "$(nproc)"); do
    python3 -c 'while True: pass' & loaders+=("$!")
  done
  trap 'kill "${loaders[@]}" 2>/dev/null' EXIT
fi
status=0
for i in $(seq "$runs"); do
  args=()
  [ "$random" = 1 ] && args+=(--random-order)
  start=$(date +%s)
  make --no-print-directory test PYTEST_ARGS="${args[*]:-} ${PYTEST_ARGS:-}" >"$out/run-$i.log" 2>&1
  rc=$?
  [ "$rc" = 0 ] || status=1
  summary=$(grep -E '^(=+ .*(passed|failed).* =+|FAILED|ERROR) ' "$out/run-$i.log" | tail -n 8)
  seed=$(grep -o 'random-order-seed=[0-9]*' "$out/run-$i.log" | head -n1)
  echo "run $i: rc=$rc $(( $(date +%s) - start )) s ${seed}"
  echo "$summary" | sed 's/^/    /'
done
echo "logs: $out"
exit $status
