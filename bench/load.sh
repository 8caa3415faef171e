#!/usr/bin/env bash
# Read-path throughput, side by side in one run, on this machine:
#   - /healthz            the floor: a handler that does nothing
#   - article detail      an L1 hit (finished bytes)
#   - article list page   an L1 hit
#   - /users/{id}         not cached: one MySQL query per request
# plus the cross-instance staleness bound and the seeding time.
#
#   bench/load.sh [DURATION_SECS]      (needs wrk: apt-get install wrk)
#
# The server is pinned to core 0 and wrk to core 1. Figures are for
# comparison with each other, not absolutes: this machine is shared.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
PORT=18080
DB=feedgate_bench_$RANDOM
SERVER=mysql://root@127.0.0.1:3306

scripts/services.sh >/dev/null
cargo build --release --quiet --bin feedgate --example staleness
mysql -uroot -e "CREATE DATABASE $DB"
trap 'kill $SERVER_PID 2>/dev/null || true; mysql -uroot -e "DROP DATABASE IF EXISTS $DB"' EXIT

export DATABASE_URL=$SERVER/$DB REDIS_URL=redis://127.0.0.1:6379/0
export FEEDGATE_JWT_SECRET=bench-only-key-0123456789abcdef0123456789
export FEEDGATE_CACHE__REDIS_PREFIX=feedgate-bench-$DB FEEDGATE_LISTEN=127.0.0.1:$PORT RUST_LOG=warn
# wrk is one client address standing in for many clients: lift its read limit.
export FEEDGATE_RATE_LIMIT__READ__LIMIT=1000000000 FEEDGATE_RATE_LIMIT__READ__WINDOW_SECS=1

echo "== seeding 100000 articles into MariaDB"
target/release/feedgate seed --articles 100000

taskset -c 0 target/release/feedgate serve & SERVER_PID=$!
for _ in $(seq 50); do curl -sf localhost:$PORT/healthz >/dev/null && break; sleep 0.1; done

run() {
    local name=$1 path=$2
    curl -sf -o /dev/null "localhost:$PORT$path"   # warm
    local rps
    rps=$(taskset -c 1 wrk -t1 -c32 -d"${DURATION}s" -H 'Accept-Encoding: gzip' "http://127.0.0.1:$PORT$path" \
        | awk '/Requests\/sec/ {print $2}')
    printf '%-28s %12s req/s\n' "$name" "$rps"
}

echo "== throughput (wrk, 1 thread, 32 connections, ${DURATION}s each, gzip accepted)"
run "healthz (floor)" /healthz
run "article detail (L1 hit)" /api/v1/articles/1
run "article list (L1 hit)" "/api/v1/articles?page=1&per_page=20"
run "user profile (MySQL)" /api/v1/users/1
kill $SERVER_PID

echo "== cross-instance staleness (two instances, one MariaDB, one Redis)"
target/release/examples/staleness 500
