#!/usr/bin/env bash
# Memory against the L1 budget: an instance with a small budget reads
# articles at random from a large database until its L1 has been full for
# a while, and the script prints its RSS every 10 s beside the budget.
# Without Redis, so every miss fills L1 from MariaDB.
#
#   bench/l1-memory.sh [BUDGET_MB] [DURATION_SECS]        defaults: 64 120
#
# ARTICLES=N seeds N articles (default 1,000,000) into a throwaway database;
# KEEP_DB=name reuses (or keeps) one, e.g. the one bench/hits.sh seeded.
set -euo pipefail
cd "$(dirname "$0")/.."
BUDGET_MB=${1:-64}
DURATION=${2:-120}
ARTICLES=${ARTICLES:-1000000}
DB=${KEEP_DB:-feedgate_memory_$RANDOM}
PORT=18141
TMP=$(mktemp -d)
SERVER_PID=
cleanup() {
    kill "$SERVER_PID" 2>/dev/null || true
    [ -n "${KEEP_DB:-}" ] || mysql -uroot -e "DROP DATABASE IF EXISTS $DB" || true
    rm -rf "$TMP"
}
trap cleanup EXIT

scripts/services.sh >/dev/null
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet --bin feedgate
BIN=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/release/feedgate

export DATABASE_URL=mysql://root@127.0.0.1:3306/$DB FEEDGATE_LISTEN=127.0.0.1:$PORT
export FEEDGATE_JWT_SECRET=bench-only-key-0123456789abcdef0123456789 RUST_LOG=warn
export FEEDGATE_CACHE__L1_MAX_BYTES=$((BUDGET_MB * 1024 * 1024))
export FEEDGATE_RATE_LIMIT__READ__LIMIT=1000000000 FEEDGATE_RATE_LIMIT__READ__WINDOW_SECS=1
unset REDIS_URL
if ! mysql -uroot -e "USE $DB" 2>/dev/null; then
    mysql -uroot -e "CREATE DATABASE $DB"
    "$BIN" seed --articles "$ARTICLES" >/dev/null 2>&1
fi
mysql -uroot -N "$DB" -e "SELECT id FROM articles WHERE status = 'published' LIMIT ${IDS:-100000000}" >"$TMP/ids"

taskset -c 0 "$BIN" serve & SERVER_PID=$!
for _ in $(seq 100); do curl -sf -o /dev/null "127.0.0.1:$PORT/healthz" && break; sleep 0.1; done
rss_mb() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$SERVER_PID/status"; }
echo "== L1 budget $BUDGET_MB MB; RSS idle $(rss_mb) MB; $(wc -l <"$TMP/ids") articles to read"

taskset -c 1 wrk -t1 -c32 -d"${DURATION}s" -H 'Accept-Encoding: gzip' -s bench/random_ids.lua \
    "http://127.0.0.1:$PORT" -- "$TMP/ids" >"$TMP/wrk" &
WRK_PID=$!
for elapsed in $(seq 10 10 "$DURATION"); do
    sleep 10
    curl -s "127.0.0.1:$PORT/metrics" >"$TMP/metrics"
    metric() { awk -v name="$1" '$1 == name {printf "%.0f", $2}' "$TMP/metrics"; }
    printf '%4d s  RSS %4d MB  (budget %d MB, L1 holds %d entries weighing %d MB)  articles loaded %s\n' \
        "$elapsed" "$(rss_mb)" "$BUDGET_MB" "$(metric feedgate_cache_l1_entries)" \
        $(($(metric feedgate_cache_l1_bytes) / 1048576)) \
        "$(awk '/^feedgate_cache_fills_total\{route="article"\}/ {print $2}' "$TMP/metrics")"
done
wait "$WRK_PID"
awk '/Requests\/sec/ {print "== " $2 " reads/s"}' "$TMP/wrk"
