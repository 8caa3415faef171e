#!/usr/bin/env bash
# Does a flood of wrong-password sign-ins starve reads? Measures the p99 of
# a cached article read (wrk, 10 connections) alone and during a flood of
# 40 connections posting wrong passwords to /api/v1/tokens, in three
# set-ups: rate limits on (the flood comes from one address, so its excess
# gets 429), rate limits off (only the bounded hashing pool stands between
# the flood and the cores: its excess gets 503), and the limiter's own cost
# (/healthz and the article read, limits on vs off, no flood).
#
#   bench/login_flood.sh [DURATION_SECS]     (needs wrk: apt-get install wrk)
#
# The server is pinned to core 0, both load generators to core 1.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-15}
PORT=18081
DB=feedgate_flood_$RANDOM
BIN=${CARGO_TARGET_DIR:-target}/release/feedgate
ARTICLE=/api/v1/articles/1

scripts/services.sh >/dev/null
cargo build --release --quiet --bin feedgate
mysql -uroot -e "CREATE DATABASE $DB"
SERVER_PID=
trap 'kill $SERVER_PID 2>/dev/null || true; mysql -uroot -e "DROP DATABASE IF EXISTS $DB"' EXIT

export DATABASE_URL=mysql://root@127.0.0.1:3306/$DB REDIS_URL=redis://127.0.0.1:6379/0
export FEEDGATE_JWT_SECRET=bench-only-key-0123456789abcdef0123456789
export FEEDGATE_CACHE__REDIS_PREFIX=feedgate-bench-$DB FEEDGATE_LISTEN=127.0.0.1:$PORT RUST_LOG=error
# wrk's readers share one address, standing in for many clients.
export FEEDGATE_RATE_LIMIT__READ__LIMIT=1000000000 FEEDGATE_RATE_LIMIT__READ__WINDOW_SECS=1

"$BIN" seed --articles 1000 >/dev/null
"$BIN" user create --username flooded --password 'the real password' --role author >/dev/null

start() {
    env "$@" taskset -c 0 "$BIN" serve >/tmp/feedgate-flood-server.log 2>&1 & SERVER_PID=$!
    for _ in $(seq 100); do curl -sf "localhost:$PORT/healthz" >/dev/null && break; sleep 0.1; done
    curl -sf -o /dev/null "localhost:$PORT$ARTICLE" || {
        echo "the server did not start:" >&2; tail -5 /tmp/feedgate-flood-server.log >&2; exit 1
    }
}

stop() {
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
}

# p99 (ms) and req/s of `path` under 10 connections.
reads() {
    taskset -c 1 wrk -t1 -c10 -d"${DURATION}s" --latency "http://127.0.0.1:$PORT$1" \
        | awk '/^ +99%/ {p99=$2} /Requests\/sec/ {rps=$2}
               END {v=p99; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000};
                    printf "%.2f %s", v, rps}'
}

flood() {
    taskset -c 1 wrk -t1 -c40 -d"$((DURATION + 4))s" -s bench/login.lua \
        "http://127.0.0.1:$PORT/api/v1/tokens" | grep -E '^logins|Requests/sec' | tr '\n' ' '
}

scenario() {
    local name=$1; shift
    start "$@"
    read -r quiet_p99 quiet_rps <<<"$(reads $ARTICLE)"
    flood >/tmp/feedgate-flood.$$ & FLOOD=$!
    sleep 2
    read -r loud_p99 loud_rps <<<"$(reads $ARTICLE)"
    wait $FLOOD
    stop
    printf '| %s | %s ms | %s | %s ms | %s | %.2f | %s |\n' "$name" "$quiet_p99" "$quiet_rps" \
        "$loud_p99" "$loud_rps" "$(echo "$loud_p99 / $quiet_p99" | bc -l)" "$(cat /tmp/feedgate-flood.$$)"
    rm -f /tmp/feedgate-flood.$$
}

echo "== read p99 of $ARTICLE without and with a 40-connection wrong-password flood (${DURATION}s each)"
echo "| set-up | p99 alone | req/s alone | p99 in flood | req/s in flood | ratio | flood |"
echo "|---|---:|---:|---:|---:|---:|---|"
scenario "rate limits on" FEEDGATE_RATE_LIMIT__ENABLED=true
scenario "rate limits off (hashing pool only)" FEEDGATE_RATE_LIMIT__ENABLED=false

echo
echo "== limiter cost: limits on vs off, no flood (${DURATION}s each)"
echo "| path | p99 off | req/s off | p99 on | req/s on | req/s on/off |"
echo "|---|---:|---:|---:|---:|---:|"
for path in /healthz $ARTICLE; do
    start FEEDGATE_RATE_LIMIT__ENABLED=false; read -r off_p99 off_rps <<<"$(reads "$path")"; stop
    start FEEDGATE_RATE_LIMIT__ENABLED=true; read -r on_p99 on_rps <<<"$(reads "$path")"; stop
    printf '| %s | %s ms | %s | %s ms | %s | %.3f |\n' "$path" "$off_p99" "$off_rps" "$on_p99" "$on_rps" \
        "$(echo "$on_rps / $off_rps" | bc -l)"
done
