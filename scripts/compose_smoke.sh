#!/usr/bin/env bash
# `make compose-smoke`: the containers, end to end, on this machine.
#
#  1. a Docker engine: installed from Debian's packages when missing (docker.io, docker-compose,
#     debootstrap), dockerd started in the background when none runs (and stopped at the end);
#  2. the base image: the official Python image when a registry answers, else a local Debian base
#     (scripts/docker_base.sh: debootstrap + docker import, with EXTRA_CA_DIR's certificates);
#  3. the project's image (docker/Dockerfile) from that base, its packages from a local wheelhouse
#     served over HTTP during the build (var/wheelhouse, filled by the host's pip, whose
#     configuration finds the CPU build of torch), kept in Docker's build cache between runs;
#  4. compose.yml's web, worker-cpu and beat (compose.smoke.yml: on the host's network, against the
#     host's PostgreSQL and Redis, database cp_smoke and Redis db 5: a managed database's place);
#  5. a course with the attention assignment, a student with an API token; a correct and a hostile
#     file submitted through the API, both graded by the sandbox inside the worker container, and
#     the limits the engine reports in force there (cgroup version, seccomp, namespaces);
#  6. the worker container killed (docker kill) while a submission is running, started again, and
#     the submission graded after the restart (beat's sweeper requeues it once its lease lapses);
#  7. everything stopped and removed (containers, volumes, the database, the Redis db).
#
# Prints the time of every step; exits non-zero on the first failure (after cleaning up).
# Settings (environment): SMOKE_BASE (a base image; default: see 2), SMOKE_WHEELHOUSE (a folder of
# wheels, default var/wheelhouse; empty: the indexes), EXTRA_CA_DIR (default
# /usr/local/share/ca-certificates), SMOKE_DATABASE_URL, SMOKE_BROKER_URL, SMOKE_PORT (8765),
# SMOKE_KEEP=1 (leave the containers running).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

SMOKE_DIR="$ROOT/var/compose-smoke"
PROJECT=cpsmoke
IMAGE=courseplatform:smoke
WEB_CONTAINER=cpsmoke_web_smoke
PORT="${SMOKE_PORT:-8765}"
WHEEL_PORT="${SMOKE_WHEEL_PORT:-8766}"
DB_URL="${SMOKE_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/cp_smoke}"
BROKER_URL="${SMOKE_BROKER_URL:-redis://127.0.0.1:6379/5}"
WHEELHOUSE="${SMOKE_WHEELHOUSE-$ROOT/var/wheelhouse}"
EXTRA_CA_DIR="${EXTRA_CA_DIR-/usr/local/share/ca-certificates}"
# Debian's client (20.10) has BuildKit built in; a newer client without the buildx plugin has not.
DOCKER="${DOCKER:-$( [ -x /usr/bin/docker ] && echo /usr/bin/docker || echo docker )}"
export DOCKER DOCKER_BUILDKIT=1

T0=$SECONDS
step_t=$SECONDS
declare -a SUMMARY=()
say() { printf '==> %s\n' "$*"; }
step() { step_t=$SECONDS; say "$*"; }
done_step() { local s=$((SECONDS - step_t)); SUMMARY+=("$(printf '%-44s %5d s' "$1" "$s")"); say "$1: ${s} s"; }
fail() { echo "compose-smoke FAILED: $*" >&2; exit 1; }

started_dockerd=""
wheel_server=""
compose_up=0
db_name="${DB_URL##*/}"
admin_url="${DB_URL%/*}/postgres"
redis_db="${BROKER_URL##*/}"
redis_host="${BROKER_URL#redis://}"; redis_host="${redis_host%%/*}"

compose() { docker-compose -p "$PROJECT" --project-directory "$SMOKE_DIR" -f "$ROOT/docker/compose.yml" -f "$ROOT/docker/compose.smoke.yml" "$@"; }

cleanup() {
  local rc=$?
  set +e
  [ -n "$wheel_server" ] && kill "$wheel_server" 2>/dev/null
  if ((compose_up)); then
    if ((rc != 0)); then
      say "Logs of the failed run (last lines of each service)"
      compose logs --no-color --tail=40 worker-cpu beat 2>&1 | tail -n 80
      "$DOCKER" logs --tail=40 "$WEB_CONTAINER" 2>&1 | sed "s/^/web | /"
    fi
    if [ "${SMOKE_KEEP:-0}" = 1 ]; then
      say "SMOKE_KEEP=1: the containers keep running (docker-compose -p $PROJECT ... down -v to stop them)"
    else
      step "Stopping and removing the containers and volumes"
      "$DOCKER" rm -f "$WEB_CONTAINER" >/dev/null 2>&1
      compose down -v --remove-orphans >/dev/null 2>&1
      psql "$admin_url" -qc "DROP DATABASE IF EXISTS \"$db_name\" WITH (FORCE)" >/dev/null 2>&1
      redis-cli -h "${redis_host%:*}" -p "${redis_host#*:}" -n "$redis_db" flushdb >/dev/null 2>&1
      done_step "down (containers, volumes, database)"
    fi
  fi
  if [ -n "$started_dockerd" ] && [ "${SMOKE_KEEP:-0}" != 1 ]; then
    say "Stopping the Docker engine this script started (pid $started_dockerd)"
    kill "$started_dockerd" 2>/dev/null
    for _ in $(seq 60); do kill -0 "$started_dockerd" 2>/dev/null || break; sleep 0.5; done
  fi
  if ((${#SUMMARY[@]})); then
    echo
    echo "compose-smoke timings:"
    printf '  %s\n' "${SUMMARY[@]}"
    echo "  total                                        $((SECONDS - T0)) s"
  fi
  ((rc == 0)) && echo "compose-smoke: OK" || echo "compose-smoke: FAILED (exit $rc)" >&2
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------- 1. engine
step "Docker engine"
missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if ((${#missing[@]})); then
  [ "$(id -u)" = 0 ] || fail "missing Debian packages: ${missing[*]} (run as root or install them)"
  say "Installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  [ -x /usr/bin/docker ] && DOCKER=/usr/bin/docker
fi
if ! "$DOCKER" info >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || fail "no Docker engine answers and only root can start one here"
  mkdir -p "$SMOKE_DIR"
  say "Starting dockerd in the background (no systemd here); log: $SMOKE_DIR/dockerd.log"
  nohup dockerd >"$SMOKE_DIR/dockerd.log" 2>&1 &
  started_dockerd=$!
  for _ in $(seq 120); do "$DOCKER" info >/dev/null 2>&1 && break; sleep 0.5; done
  "$DOCKER" info >/dev/null 2>&1 || fail "dockerd did not start (see $SMOKE_DIR/dockerd.log)"
fi
say "$("$DOCKER" version --format 'engine {{.Server.Version}}, client {{.Client.Version}}'), $(docker-compose version --short 2>/dev/null | head -n1 | sed 's/^/docker-compose /'), cgroup v$("$DOCKER" info --format '{{.CgroupVersion}}')"
done_step "engine ready"

# ---------------------------------------------------------------------------------------- 2. base
step "Base image"
BASE="${SMOKE_BASE:-}"
if [ -z "$BASE" ]; then
  if "$DOCKER" image inspect python:3.11-slim-bookworm >/dev/null 2>&1 \
     || timeout 60 "$DOCKER" pull -q python:3.11-slim-bookworm >/dev/null 2>&1; then
    BASE=python:3.11-slim-bookworm
  else
    say "No registry answers: a local Debian base (scripts/docker_base.sh)"
    BASE=courseplatform-base:bookworm
    # the host's CPython 3.11 (e.g. pyenv's) when it is not Debian's: bookworm's python3 (3.11.2) is
    # older than some pins (docker_base.sh --python)
    py_prefix="$(python3 -c 'import sys; print(sys.base_prefix if sys.version_info[:2] == (3, 11) else "")')"
    [ "$py_prefix" = /usr ] && py_prefix=""
    bash scripts/docker_base.sh --name "$BASE" ${EXTRA_CA_DIR:+--ca-dir "$EXTRA_CA_DIR"} ${py_prefix:+--python "$py_prefix"}
  fi
fi
say "base: $BASE"
done_step "base image ($BASE)"

# ---------------------------------------------------------------------------------------- 3. image
# Extra CA certificates into the build context (docker/ca-certificates/, not committed).
if [ -n "$EXTRA_CA_DIR" ] && ls "$EXTRA_CA_DIR"/*.crt >/dev/null 2>&1; then
  cp -u "$EXTRA_CA_DIR"/*.crt docker/ca-certificates/
fi
build_args=(--build-arg "BASE_IMAGE=$BASE")
if [ -n "$WHEELHOUSE" ]; then
  mkdir -p "$SMOKE_DIR"
  step "Wheelhouse $WHEELHOUSE (the host's pip: its indexes and the CPU torch it finds)"
  mkdir -p "$WHEELHOUSE"
  stamp="$(sha256sum requirements.txt | cut -c1-16)"
  if [ "$(cat "$WHEELHOUSE/.requirements" 2>/dev/null)" != "$stamp" ]; then
    PY="${PYTHON:-python3}"
    "$PY" -m pip wheel -q --progress-bar off -r requirements.txt -w "$WHEELHOUSE" 2>"$SMOKE_DIR/pip-wheel.log" \
      || { tail -n 20 "$SMOKE_DIR/pip-wheel.log" >&2; fail "pip wheel could not fill $WHEELHOUSE"; }
    # lines with an environment marker this host's Python skips (the image's may need them)
    marked=$(grep -E '^[A-Za-z0-9].*;' requirements.txt | sed -E 's/[[:space:]]*;.*//' || true)
    if [ -n "$marked" ]; then
      # shellcheck disable=SC2086
      "$PY" -m pip wheel -q --progress-bar off --no-deps $marked -w "$WHEELHOUSE" 2>>"$SMOKE_DIR/pip-wheel.log" \
        || fail "pip wheel: $marked"
    fi
    echo "$stamp" >"$WHEELHOUSE/.requirements"
  fi
  say "$(ls "$WHEELHOUSE"/*.whl | wc -l) wheels, $(du -sh "$WHEELHOUSE" | cut -f1)"
  done_step "wheelhouse"
  python3 -m http.server --bind 127.0.0.1 --directory "$WHEELHOUSE" "$WHEEL_PORT" >/dev/null 2>&1 &
  wheel_server=$!
  for _ in $(seq 40); do curl -fsS -o /dev/null "http://127.0.0.1:$WHEEL_PORT/" 2>/dev/null && break; sleep 0.25; done
  build_args+=(--network host --build-arg "WHEELHOUSE_URL=http://127.0.0.1:$WHEEL_PORT/")
fi
step "Building $IMAGE (docker/Dockerfile; cached layers are reused)"
cold="warm"
"$DOCKER" image inspect "$IMAGE" >/dev/null 2>&1 || cold="cold"
"$DOCKER" build -f docker/Dockerfile -t "$IMAGE" "${build_args[@]}" . >"$SMOKE_DIR/build.log" 2>&1 \
  || { tail -n 40 "$SMOKE_DIR/build.log" >&2; fail "docker build failed (log: $SMOKE_DIR/build.log)"; }
[ -n "$wheel_server" ] && { kill "$wheel_server" 2>/dev/null; wheel_server=""; }
say "image size: $("$DOCKER" image inspect "$IMAGE" --format '{{.Size}}' | awk '{printf "%.2f GB", $1/1e9}')"
done_step "image build ($cold cache)"

# ---------------------------------------------------------------------------------------- 4. up
step "Services: database $db_name, Redis db $redis_db, then migrate, web, worker-cpu, beat"
mkdir -p "$SMOKE_DIR"
cat >"$SMOKE_DIR/.env" <<EOF
# written by scripts/compose_smoke.sh for the smoke run only
SECRET_KEY=compose-smoke-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
ALLOWED_HOSTS=127.0.0.1,localhost
CSRF_TRUSTED_ORIGINS=http://127.0.0.1:$PORT
POSTGRES_PASSWORD=unused-the-host-database
FLOWER_BASIC_AUTH=smoke:unused
SECURE_SSL_REDIRECT=0
SECURE_HSTS_SECONDS=0
LOG_LEVEL=INFO
CPU_WORKER_CONCURRENCY=1
CPU_TRUSTED_MEMORY_MB=3072
METRICS_TOKEN=compose-smoke
SMOKE_IMAGE=$IMAGE
SMOKE_PORT=$PORT
SMOKE_DATABASE_URL=$DB_URL
SMOKE_BROKER_URL=$BROKER_URL
EOF
"$DOCKER" rm -f "$WEB_CONTAINER" >/dev/null 2>&1 || true  # a previous run's leftovers
compose down -v --remove-orphans >/dev/null 2>&1 || true
psql "$admin_url" -qc "DROP DATABASE IF EXISTS \"$db_name\" WITH (FORCE)" >/dev/null
psql "$admin_url" -qc "CREATE DATABASE \"$db_name\"" >/dev/null
redis-cli -h "${redis_host%:*}" -p "${redis_host#*:}" -n "$redis_db" flushdb >/dev/null
compose_up=1
compose run --rm --no-deps migrate >"$SMOKE_DIR/migrate.log" 2>&1 || { tail -n 30 "$SMOKE_DIR/migrate.log" >&2; fail "migrate failed"; }
compose up -d --no-deps --no-build worker-cpu beat >"$SMOKE_DIR/up.log" 2>&1 || { cat "$SMOKE_DIR/up.log" >&2; fail "compose up failed"; }
# web as a one-off container of its service: `run` leaves out compose.yml's published port, which a
# container on the host's network cannot have (it listens on 127.0.0.1:$PORT instead)
compose run -d --no-deps --name "$WEB_CONTAINER" web >"$SMOKE_DIR/up.log" 2>&1 || { cat "$SMOKE_DIR/up.log" >&2; fail "web did not start"; }
for _ in $(seq 240); do
  curl -fsS -o /dev/null "http://127.0.0.1:$PORT/accounts/login/" 2>/dev/null && break; sleep 0.5
done
curl -fsS -o /dev/null "http://127.0.0.1:$PORT/accounts/login/" || fail "web does not answer on 127.0.0.1:$PORT"
worker_id="$(compose ps -q worker-cpu)"
for _ in $(seq 360); do
  "$DOCKER" logs "$worker_id" 2>&1 | grep -q " ready\." && break; sleep 0.5
done
"$DOCKER" logs "$worker_id" 2>&1 | grep -q " ready\." || fail "the worker did not become ready"
done_step "up (migrate, web answering, worker ready)"

# The worker container's privileges, as Docker applied them.
"$DOCKER" inspect "$worker_id" --format \
  'worker container: privileged={{.HostConfig.Privileged}} cap_add={{.HostConfig.CapAdd}} cap_drop={{.HostConfig.CapDrop}} security_opt={{.HostConfig.SecurityOpt}} cgroupns={{.HostConfig.CgroupnsMode}} memory={{.HostConfig.Memory}}' \
  | python3 -c 'import re, sys; print(re.sub(r"seccomp=\{.*\}(?=\] cgroupns=)", "seccomp=<the JSON of docker/seccomp-worker.json>", sys.stdin.read()), end="")'

# ---------------------------------------------------------------------------------------- 5. grade
step "Course, attention assignment, student and token (manage.py shell in the web container)"
token="$("$DOCKER" exec -i "$WEB_CONTAINER" python manage.py shell 2>/dev/null <<'PY' | tail -n1
from pathlib import Path
from django.contrib.auth import get_user_model
from courseplatform.courses.models import Course, Membership
from courseplatform.submissions.models import ApiToken
from courseplatform.submissions.sync import sync_pack
course, _ = Course.objects.get_or_create(slug="smoke", defaults={"title": "Compose smoke"})
a, _ = sync_pack(course, Path("assignments/attention"))
a.max_attempts, a.cooldown_seconds = 0, 0
a.save()
u, _ = get_user_model().objects.get_or_create(username="smoke-student")
Membership.objects.get_or_create(course=course, user=u, defaults={"role": "student"})
print(ApiToken.issue(u, "compose-smoke")[1])
PY
)"
[ -n "$token" ] && [ "${#token}" -ge 20 ] || fail "could not create the course and token (got: $token)"
done_step "course and token"
# the worker (root, without CAP_FOWNER and the rest) installs checked pack uploads into the packs
# volume, which belongs to web's user: what CAP_DAC_OVERRIDE is there for
compose exec -T worker-cpu sh -c 'f=/var/lib/courseplatform/packs/.smoke-worker-write; touch "$f" && rm "$f"' \
  || fail "the worker cannot write into the packs volume (checked pack uploads are installed there)"

api() { curl -fsS -H "Authorization: Bearer $token" "$@"; }
submit() {  # submit FILE NAME -> submission id
  api -F "file=@$1;filename=$2" "http://127.0.0.1:$PORT/api/courses/smoke/assignments/attention/submissions" | jq -r .id
}
state_of() { api "http://127.0.0.1:$PORT/api/submissions/$1" | jq -r .state; }
wait_graded() {  # wait_graded ID TIMEOUT_S
  local end=$((SECONDS + $2)) s
  while ((SECONDS < end)); do
    s="$(state_of "$1")"
    case "$s" in graded|error) return 0 ;; esac
    sleep 1
  done
  fail "submission $1 not graded within $2 s (state: $s)"
}

work="$(mktemp -d)"
cp assignments/attention/solutions/einsum.py "$work/correct.py"
cat >"$work/hostile.py" <<'PY'
# A hostile submission: probes the sandbox, then tries to take the worker's memory.
import os, socket

def probe(name, fn):
    try:
        fn()
        print(f"{name}: ALLOWED")
    except OSError as exc:
        print(f"{name}: refused ({exc.__class__.__name__})")

# the host's PostgreSQL listens on 127.0.0.1:5432 of the worker container's (host) network
probe("network", lambda: socket.create_connection(("127.0.0.1", 5432), timeout=2).close())
def unshare():  # a user and a mount namespace (os.unshare is Python 3.12+)
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(0x10000000 | 0x00020000) != 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
probe("unshare", unshare)
probe("read-pack", lambda: open("/app/assignments/attention/reference.py").read())
probe("write-root", lambda: open("/pwned", "w").write("x"))
print(f"uid={os.getuid()} pid={os.getpid()}", flush=True)
hog = []
while True:  # 2 GB is the pack's memory limit: the sandbox's cgroup stops this
    hog.append(bytearray(64 << 20))

def scaled_dot_product_attention(q, k, v, mask=None):
    raise NotImplementedError
PY

step "Submitting a correct and a hostile file through the API"
correct_id="$(submit "$work/correct.py" attention.py)"
hostile_id="$(submit "$work/hostile.py" attention.py)"
[[ "$correct_id" =~ ^[0-9]+$ && "$hostile_id" =~ ^[0-9]+$ ]] || fail "the API refused a submission"
wait_graded "$correct_id" 600
wait_graded "$hostile_id" 300
done_step "correct + hostile graded (first grades: warm-up)"

report="$("$DOCKER" exec -i "$WEB_CONTAINER" python manage.py shell 2>/dev/null <<PY | tail -n1
import json
from courseplatform.submissions.models import Submission
out = {}
for name, pk in (("correct", $correct_id), ("hostile", $hostile_id)):
    s = Submission.objects.get(pk=pk)
    r = s.result or {}
    out[name] = {"state": s.state, "score": s.score, "max": r.get("max_score"), "message": r.get("message"),
                 "output": (r.get("output") or "")[-1500:], "engine": r.get("engine", {}),
                 "tests": [t.get("status") for t in r.get("tests", [])]}
print(json.dumps(out))
PY
)"
echo "$report" | jq -e . >/dev/null || fail "could not read the results (got: $report)"
echo "$report" | jq -r '"correct: \(.correct.state) \(.correct.score)/\(.correct.max): \(.correct.message)",
                        "hostile: \(.hostile.state) \(.hostile.score)/\(.hostile.max): \(.hostile.message)"'
echo "hostile output:"; echo "$report" | jq -r .hostile.output | sed 's/^/    /'
echo "limits in force in the worker container's sandboxes (the engine's own report):"
echo "$report" | jq -r '.correct.engine | "    sandbox: \(.sandbox)", (.limits // {} | to_entries[] | "    \(.key): \(.value)")'
echo "$report" | jq -e '.correct.state == "graded" and .correct.score == .correct.max and .correct.max > 0' >/dev/null \
  || fail "the correct file did not get full marks"
echo "$report" | jq -e '.hostile.score == 0' >/dev/null || fail "the hostile file scored"
echo "$report" | jq -e '.hostile.message | test("memory|MB")' >/dev/null || fail "the hostile file was not stopped by the memory limit"
echo "$report" | jq -e '.correct.engine.sandbox == "namespaces" and (.correct.engine.limits.cgroup | startswith("v"))
                        and (.correct.engine.limits.seccomp | test("refused"))' >/dev/null \
  || fail "the sandbox in the worker container is not fully enforced (namespaces, cgroup, seccomp)"
if echo "$report" | jq -r .hostile.output | grep -q ALLOWED; then fail "the hostile file got through a probe"; fi
for probe in network unshare read-pack write-root; do
  echo "$report" | jq -r .hostile.output | grep -q "^$probe: refused" || fail "no refusal of the $probe probe in the output"
done

# ---------------------------------------------------------------------------------------- 6. kill
step "Killing the worker container mid-grade, starting it again"
cat "$work/correct.py" >"$work/slow.py"
printf '\nimport time\ntime.sleep(7)  # at import: still within the 10 s import budget\n' >>"$work/slow.py"
slow_id="$(submit "$work/slow.py" attention.py)"
for _ in $(seq 120); do [ "$(state_of "$slow_id")" = running ] && break; sleep 0.5; done
[ "$(state_of "$slow_id")" = running ] || fail "submission $slow_id never started running"
sleep 2
"$DOCKER" kill "$worker_id" >/dev/null
killed_at=$SECONDS
say "worker container killed while submission $slow_id was $(state_of "$slow_id")"
[ "$(state_of "$slow_id")" = running ] || fail "the submission should still read running after the kill"
compose start worker-cpu >/dev/null 2>&1
wait_graded "$slow_id" 600
recover_s=$((SECONDS - killed_at))
final="$(api "http://127.0.0.1:$PORT/api/submissions/$slow_id" | jq -c '{state, score, max_score}')"
say "after the restart: $final, $recover_s s after the kill"
echo "$final" | jq -e '.state == "graded" and .score == .max_score' >/dev/null || fail "the requeued submission was not graded in full"
done_step "kill -> restart -> graded"
rm -rf "$work"
