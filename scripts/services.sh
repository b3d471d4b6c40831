#!/usr/bin/env bash
# Starts PostgreSQL and Redis on 127.0.0.1 when they are down; fails clearly if they stay down.
set -uo pipefail
pg_up() { pg_isready -q -h 127.0.0.1 -p 5432; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

if ! pg_up; then
  echo "Starting PostgreSQL..."
  version="$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1)"
  if [ -z "$version" ]; then
    echo "ERROR: no PostgreSQL cluster in /etc/postgresql (is Debian's postgresql installed? run: bash scripts/system_deps.sh)" >&2
    exit 1
  fi
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
fi
if ! redis_up; then
  echo "Starting Redis..."
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  for _ in $(seq 1 30); do redis_up && break; sleep 1; done
fi
ok=1
pg_up || { echo "ERROR: PostgreSQL is not reachable on 127.0.0.1:5432 (tried to start it; see 'pg_lsclusters')." >&2; ok=0; }
redis_up || { echo "ERROR: Redis is not reachable on 127.0.0.1:6379 (tried to start it; see /var/log/redis/ci.log)." >&2; ok=0; }
[ "$ok" = 1 ] || exit 1
# The tests connect with TEST_DATABASE_URL (default: postgres over TCP, no password); say so if that is refused.
url="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/courseplatform}"
if ! psql "${url%/*}/postgres" -Atqc 'select 1' >/dev/null 2>&1 </dev/null; then
  echo "ERROR: PostgreSQL refuses ${url%/*}. With the default URL, allow user postgres for 127.0.0.1 in" >&2
  echo "  pg_hba.conf ('host all postgres 127.0.0.1/32 trust', then reload), or point the tests elsewhere:" >&2
  echo "  make test TEST_DATABASE_URL=postgres://USER:PASSWORD@127.0.0.1:5432/courseplatform" >&2
  exit 1
fi
echo "PostgreSQL and Redis are up."
