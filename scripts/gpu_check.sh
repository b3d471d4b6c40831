#!/usr/bin/env bash
# Grade every pack with queue = "gpu" on this machine's GPU with its real settings, and print each
# grade's time and score. The packs choose their settings from the worker's device, decided on the
# trusted side (ctx.device; bert_finetune: the full training split and a 60 s budget on CUDA, a
# 96-sentence subset on CPU), so the same script runs in a small mode on a machine without a GPU;
# it says which one ran.
#
# Then the GPU path of the budget (issue 22): bert_finetune's budget on CUDA is the wall-clock time
# of train() while the grade holds the device alone (ctx.hold_device), so the reference's note must
# say "seconds on the GPU" and its train_seconds metric stay within 60 s + slack; and a submission
# that tells itself CUDA is unavailable still gets the GPU settings (the device is the worker's).
#
#   scripts/gpu_check.sh            # reference.py and every solutions/*.py of each gpu pack
#   scripts/gpu_check.sh --small    # reference.py only
#   PYTHON=.venv/bin/python ASSIGNMENTS_DIR=assignments scripts/gpu_check.sh
#
# Exit status: 0 when every file graded ("graded" status with a score), 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
DIR="${ASSIGNMENTS_DIR:-assignments}"
SMALL=0
[[ "${1:-}" == "--small" ]] && SMALL=1
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

echo "== device"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
"$PY" - <<'PY'
import torch
if torch.cuda.is_available():
    free, total = torch.cuda.mem_get_info(0)
    print(f"torch {torch.__version__}: CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0)}, "
          f"{total / 2**20:.0f} MB ({free / 2**20:.0f} MB free): the packs' GPU settings")
else:
    print(f"torch {torch.__version__}: no CUDA device: the packs' CPU settings (small mode)")
PY

packs=()
for toml in "$DIR"/*/assignment.toml; do
  if grep -Eq '^[[:space:]]*queue[[:space:]]*=[[:space:]]*"gpu"' "$toml"; then
    packs+=("$(dirname "$toml")")
  fi
done
if [[ ${#packs[@]} -eq 0 ]]; then
  echo "no pack with queue = \"gpu\" under $DIR" >&2
  exit 1
fi

failed=0
printf '\n%-22s %-40s %9s %8s %s\n' "pack" "file" "seconds" "score" "status"
for pack in "${packs[@]}"; do
  files=("$pack/reference.py")
  if [[ $SMALL -eq 0 && -d "$pack/solutions" ]]; then
    for f in "$pack"/solutions/*.py; do [[ -e "$f" ]] && files+=("$f"); done
  fi
  for f in "${files[@]}"; do
    start=$(date +%s.%N)
    out=$("$PY" -m grader grade --json "$pack" "$f" 2>/dev/null) || true
    end=$(date +%s.%N)
    line=$(printf '%s' "$out" | "$PY" -c '
import json, sys
try:
    r = json.loads(sys.stdin.read())
except Exception as exc:
    print("-", "no-result", "(the engine printed no JSON)")
    sys.exit()
msg = (r.get("message") or "").splitlines()
score = "%g/%g" % (r.get("score") or 0, r.get("max_score") or 0)
print(score, r.get("status"), msg[0][:80] if msg else "")
')
    read -r score status rest <<<"$line"
    printf '%-22s %-40s %9.1f %8s %s %s\n' "$(basename "$pack")" "${f#"$pack"/}" "$(awk "BEGIN{print $end - $start}")" \
      "$score" "$status" "$rest"
    [[ "$status" == "graded" ]] || failed=1
  done
done

bert="$DIR/bert_finetune"
if [[ -d "$bert" ]]; then
  echo
  echo "== bert_finetune: budget and device decided on the trusted side"
  forged=$(mktemp --suffix=.py)
  trap 'rm -f "$forged"' EXIT
  { echo 'import torch'; echo 'torch.cuda.is_available = lambda: False  # a forged answer: must change nothing'
    cat "$bert/reference.py"; } > "$forged"
  for f in "$bert/reference.py" "$forged"; do
    out=$("$PY" -m grader grade --json "$bert" "$f" 2>/dev/null) || true
    if ! printf '%s' "$out" | "$PY" -c '
import json, sys
r = json.loads(sys.stdin.read())
import torch
cuda = torch.cuda.is_available()
notes = " ".join(r.get("notes") or [])
want = "on cuda with a budget of 60 seconds on the GPU" if cuda else "on cpu with a budget of 15 CPU seconds"
m = r.get("metrics") or {}
ok = want in notes and 0 < m.get("train_seconds", -1) <= (66 if cuda else 20) and r.get("status") == "graded"
print(("ok  " if ok else "BAD ") + "%s: %s; train_seconds %.1f; score %s/%s" % (
    sys.argv[1], want if want in notes else "settings note missing: " + notes[:200],
    m.get("train_seconds", -1), r.get("score"), r.get("max_score")))
sys.exit(0 if ok else 1)
' "$(basename "$f")"; then
      failed=1
    fi
  done
fi
exit $failed
