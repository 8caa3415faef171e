#!/usr/bin/env bash
# What the request log costs on the floor of the read path (/healthz), under
# each log setting, in interleaved rounds (the median of each is reported):
#   - lines on, pretty        RUST_LOG=info, stdout to /dev/null
#   - lines on, JSON          the same with FEEDGATE_LOG__FORMAT=json
#   - lines off               RUST_LOG=info,feedgate::request=warn (no line, no span)
#   - without the layer       only if BASELINE names a binary built without it
#
#   BASELINE=/path/to/feedgate bench/request-log.sh [DURATION_SECS] [ROUNDS]
#   BASELINE=... bench/request-log.sh instructions
#
# The server runs on the embedded SQLite default (/healthz touches no
# database), pinned to core 0; wrk runs on core 1. On a shared machine
# throughput is noisy: `instructions` instead counts, under valgrind's
# callgrind, the instructions spent serving 1,000 and then 3,000 keep-alive
# requests (connection handling only, startup excluded) and prints the
# difference per request, which repeats to within a few per mille.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
ROUNDS=${2:-3}
PORT=18081
WORK=$(mktemp -d)
trap 'kill $SERVER_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
SERVER_PID=

cargo build --release --quiet --bin feedgate
BIN=${CARGO_TARGET_DIR:-target}/release/feedgate
cp "$BIN" "$WORK/feedgate"

# name | binary | RUST_LOG | format
CONFIGS=(
    "lines on, pretty|$WORK/feedgate|info|pretty"
    "lines on, json|$WORK/feedgate|info|json"
    "lines off|$WORK/feedgate|info,feedgate::request=warn|pretty"
)
if [ -n "${BASELINE:-}" ]; then
    CONFIGS+=("without the layer|$BASELINE|info|pretty")
fi

measure() {
    local bin=$1 filter=$2 format=$3
    (cd "$WORK" && RUST_LOG=$filter FEEDGATE_LOG__FORMAT=$format FEEDGATE_LISTEN=127.0.0.1:$PORT \
        exec taskset -c 0 "$bin" serve >/dev/null 2>&1) & SERVER_PID=$!
    for _ in $(seq 100); do curl -sf "localhost:$PORT/healthz" >/dev/null && break; sleep 0.1; done
    taskset -c 1 wrk -t1 -c32 -d"${DURATION}s" "http://127.0.0.1:$PORT/healthz" \
        | awk '/Requests\/sec/ {printf "%d", $2}'
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
}

# Instructions per request under callgrind: (Ir(3000) - Ir(1000)) / 2000.
instructions() {
    local bin=$1 filter=$2 format=$3 n total=()
    for n in 1000 3000; do
        (cd "$WORK" && RUST_LOG=$filter FEEDGATE_LOG__FORMAT=$format FEEDGATE_LISTEN=127.0.0.1:$PORT \
            TOKIO_WORKER_THREADS=1 exec valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.out" \
            --toggle-collect='*hyper_util::server::conn::auto::UpgradeableConnection*poll*' \
            "$bin" serve >/dev/null 2>&1) & SERVER_PID=$!
        python3 - "$PORT" "$n" <<'PY'
import http.client, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
for _ in range(600):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port); c.request("GET", "/healthz"); c.getresponse().read(); break
    except OSError:
        time.sleep(0.1)
for _ in range(n - 1):
    c.request("GET", "/healthz"); r = c.getresponse(); r.read(); assert r.status == 200
PY
        kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
        total+=("$(awk '/^totals:|^summary:/ {print $2; exit}' "$WORK/cg.out")")
    done
    echo $(((total[1] - total[0]) / 2000))
}

if [ "$DURATION" = instructions ]; then
    echo "== instructions per /healthz request (callgrind)"
    for config in "${CONFIGS[@]}"; do
        IFS='|' read -r name bin filter format <<<"$config"
        printf '%-20s %8s\n' "$name" "$(instructions "$bin" "$filter" "$format")"
    done
    exit 0
fi

declare -A RESULTS
for round in $(seq "$ROUNDS"); do
    for config in "${CONFIGS[@]}"; do
        IFS='|' read -r name bin filter format <<<"$config"
        rps=$(measure "$bin" "$filter" "$format")
        RESULTS[$name]="${RESULTS[$name]:-} $rps"
        printf 'round %d  %-20s %8s req/s\n' "$round" "$name" "$rps"
    done
done

echo "== median of $ROUNDS rounds (wrk, 1 thread, 32 connections, ${DURATION}s)"
for config in "${CONFIGS[@]}"; do
    name=${config%%|*}
    median=$(tr ' ' '\n' <<<"${RESULTS[$name]}" | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    printf '%-20s %8s req/s\n' "$name" "$median"
done
