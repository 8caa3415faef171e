#!/usr/bin/env bash
# Cache misses per second with reads on the primary only, then with one read
# replica, under a steady trickle of writes; and how the fills went: on the
# replica at once, after waiting for a write's position, or on the primary
# because the replica had not applied it in time.
#
#   bench/replicas.sh [DURATION_SECS] [ARTICLES] [WRITES_PER_SEC] [ROUNDS]
#
# One instance without L1 and without Redis, so every read is a miss (one
# article by id, drawn at random from ARTICLES seeded ones), on the MariaDB
# primary (3316) and its replica (3317) that scripts/services.sh starts.
# Both servers, the instance, wrk and the writer share this machine's two
# cores: the figures compare the two set-ups on one machine (what routing
# and positions cost, how often fills wait), not the capacity a replica on
# its own host adds. The two set-ups alternate for ROUNDS rounds (default 2),
# a row each.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
ARTICLES=${2:-20000}
WRITES=${3:-20}
ROUNDS=${4:-2}
PORT=18090
DB=feedgate_bench_replicas_$RANDOM
PRIMARY=mysql://root@127.0.0.1:3316
REPLICA=mysql://root@127.0.0.1:3317
WORK=$(mktemp -d)

scripts/services.sh >/dev/null
cargo build --release --quiet --bin feedgate
mariadb -h 127.0.0.1 -P 3316 -uroot -e "CREATE DATABASE $DB"
SERVER_PID="" WRITER_PID=""
cleanup() {
    [ -n "$WRITER_PID" ] && kill "$WRITER_PID" 2>/dev/null || true
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    mariadb -h 127.0.0.1 -P 3316 -uroot -e "DROP DATABASE IF EXISTS $DB"
    rm -rf "$WORK"
}
trap cleanup EXIT

export DATABASE_URL=$PRIMARY/$DB FEEDGATE_LISTEN=127.0.0.1:$PORT RUST_LOG=warn
export FEEDGATE_JWT_SECRET=bench-only-key-0123456789abcdef0123456789
export FEEDGATE_CACHE__L1_MAX_BYTES=0 FEEDGATE_RATE_LIMIT__ENABLED=false
unset REDIS_URL

echo "== seeding $ARTICLES articles on the primary"
target/release/feedgate seed --articles "$ARTICLES" >/dev/null
target/release/feedgate user create --username bench --password 'bench-password-0123' \
    --role admin >/dev/null
mariadb -h 127.0.0.1 -P 3316 -uroot -N -e \
    "SELECT id FROM $DB.articles WHERE status = 'published'" >"$WORK/ids"
replica_has_it() {
    local pos
    pos=$(mariadb -h 127.0.0.1 -P 3316 -uroot -N -e "SELECT @@gtid_binlog_pos")
    [ "$(mariadb -h 127.0.0.1 -P 3317 -uroot -N -e "SELECT MASTER_GTID_WAIT('$pos', 60)")" = 0 ]
}
replica_has_it

metric() { # metric NAME LABELS: the value in the last scrape, 0 if absent
    awk -v name="$1" -v labels="$2" '
        $1 == name labels { v = $2 } END { print (v == "" ? 0 : v) }' "$WORK/metrics"
}

# run LABEL REPLICA_URLS: one instance, wrk for DURATION seconds, writes
# in the background; prints one row.
run() {
    local label=$1 replicas=$2
    DATABASE_REPLICA_URLS=$replicas target/release/feedgate serve & SERVER_PID=$!
    for _ in $(seq 100); do curl -sf "localhost:$PORT/healthz" >/dev/null && break; sleep 0.1; done
    if [ -n "$replicas" ]; then
        for _ in $(seq 100); do
            curl -s "localhost:$PORT/readyz" | grep -q '"name":"replica"[^}]*"status":"ok"' && break
            sleep 0.1
        done
    fi
    local token
    token=$(curl -sf "localhost:$PORT/api/v1/tokens" -H 'content-type: application/json' \
        -d '{"grant_type":"password","username":"bench","password":"bench-password-0123"}' |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')
    (
        n=0
        while true; do
            n=$((n + 1))
            id=$(shuf -n 1 "$WORK/ids")
            curl -s -o /dev/null -X PATCH "localhost:$PORT/api/v1/articles/$id" \
                -H "authorization: Bearer $token" -H 'content-type: application/json' \
                -d "{\"title\":\"Edited $n\"}"
            sleep "$(awk -v w="$WRITES" 'BEGIN { print 1 / w }')"
        done
    ) & WRITER_PID=$!
    wrk -t1 -c16 -d"${DURATION}s" --latency -s bench/random_ids.lua "http://127.0.0.1:$PORT" -- "$WORK/ids" \
        >"$WORK/wrk"
    kill "$WRITER_PID"; wait "$WRITER_PID" 2>/dev/null || true; WRITER_PID=""
    curl -s "localhost:$PORT/metrics" >"$WORK/metrics"
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""

    local rps p50 p99 errors
    rps=$(awk '/Requests\/sec/ { print $2 }' "$WORK/wrk")
    p50=$(awk '$1 == "50%" { print $2 }' "$WORK/wrk")
    p99=$(awk '$1 == "99%" { print $2 }' "$WORK/wrk")
    errors=$(awk '/Non-2xx|Socket errors/ { s = s $0 "; " } END { print (s == "" ? "0" : s) }' "$WORK/wrk")
    local replica primary fallback reached timed_out failed
    replica=$(metric feedgate_db_reads_total '{target="replica"}')
    primary=$(metric feedgate_db_reads_total '{target="primary"}')
    fallback=$(metric feedgate_db_reads_total '{target="primary_fallback"}')
    reached=$(metric feedgate_db_replica_waits_total '{result="reached"}')
    timed_out=$(metric feedgate_db_replica_waits_total '{result="timed_out"}')
    failed=$(metric feedgate_db_replica_waits_total '{result="failed"}')
    awk -v label="$label" -v rps="$rps" -v p50="$p50" -v p99="$p99" -v errors="$errors" \
        -v r="$replica" -v p="$primary" -v f="$fallback" \
        -v reached="$reached" -v t="$timed_out" -v x="$failed" 'BEGIN {
            fills = r + p + f
            printf "| %s | %s | %s | %s | %.1f%% | %.1f%% | %.1f%% | %.2f%% | %s |\n", label, rps, p50, p99,
                100 * r / fills, 100 * (p + f) / fills, 100 * (reached + t + x) / fills,
                100 * f / fills, errors
        }'
}

echo "== $DURATION s each, wrk 1 thread 16 connections, $WRITES writes/s, every read a miss"
echo "| reads | misses/s | p50 | p99 | on a replica | on the primary | fills that waited | fell back to the primary | errors |"
echo "|---|---|---|---|---|---|---|---|---|"
for _ in $(seq "$ROUNDS"); do
    run "primary only" ""
    run "one replica" "$REPLICA/$DB"
done
