#!/usr/bin/env bash
# The shared cache under a sustained write load: two instances, one MariaDB,
# a Redis of their own. Prints Redis' size as writes go by (it must follow
# what is cached, not how many writes happened) and, with a 2 MB cap that
# keeps evicting while another client floods Redis, that no read after an
# acknowledged write shows an older version, and how long the other
# instance takes to show it.
#
#   bench/redis.sh [SECONDS] [WRITES_PER_SEC]      defaults: 120 17
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-120}
RATE=${2:-17}
REDIS_PORT=16390
DB=feedgate_redis_bench_$RANDOM

scripts/services.sh >/dev/null
cargo build --release --quiet --bin feedgate
export FEEDGATE_JWT_SECRET=bench-only-key-0123456789abcdef0123456789
export RUST_LOG=warn FEEDGATE_RATE_LIMIT__ENABLED=false
PIDS=()
cleanup() {
    kill "${PIDS[@]}" 2>/dev/null || true
    redis-cli -p $REDIS_PORT shutdown nosave >/dev/null 2>&1 || true
    mysql -uroot -e "DROP DATABASE IF EXISTS $DB"
}
trap cleanup EXIT

scenario() {
    local name=$1; shift
    echo "== $name"
    redis-cli -p $REDIS_PORT shutdown nosave >/dev/null 2>&1 || true
    redis-server --port $REDIS_PORT --save "" --appendonly no --daemonize yes "$@" >/dev/null
    mysql -uroot -e "DROP DATABASE IF EXISTS $DB; CREATE DATABASE $DB"
    export DATABASE_URL=mysql://root@127.0.0.1:3306/$DB REDIS_URL=redis://127.0.0.1:$REDIS_PORT
    target/release/feedgate migrate >/dev/null
    PIDS=()
    for port in 18101 18102; do
        FEEDGATE_LISTEN=127.0.0.1:$port target/release/feedgate serve & PIDS+=($!)
    done
    for port in 18101 18102; do
        for _ in $(seq 100); do curl -sf "localhost:$port/readyz" >/dev/null && break; sleep 0.1; done
    done
    if [ "${FLOOD:-}" = 1 ]; then
        redis-benchmark -p $REDIS_PORT -q -t set -d 8192 -r 1000000 -n 100000000 -c 2 >/dev/null 2>&1 &
        PIDS+=($!)
    fi
    python3 bench/redis_load.py http://127.0.0.1:18101 http://127.0.0.1:18102 \
        $REDIS_PORT "$SECONDS_EACH" "$RATE"
    echo "evicted keys: $(redis-cli -p $REDIS_PORT info stats | awk -F: '/^evicted_keys/ {print $2}')"
    kill "${PIDS[@]}" 2>/dev/null || true
    wait "${PIDS[@]}" 2>/dev/null || true
}

scenario "no memory cap"
FLOOD=1 scenario "2 MB cap, allkeys-lru, another client flooding Redis" \
    --maxmemory 2mb --maxmemory-policy allkeys-lru
