#!/usr/bin/env bash
# What the request log costs on cached reads: L1 hits of one article
# (GET /api/v1/articles/{id}, Accept-Encoding: gzip), under each setting, in
# interleaved rounds (each setting once per round, a fresh server each time):
#   - lines off      RUST_LOG=info,feedgate::request=warn
#   - lines, pretty  RUST_LOG=info
#   - lines, JSON    RUST_LOG=info, FEEDGATE_LOG__FORMAT=json
# Lines go to a file, as a journal or a log shipper's file would take them:
# by default on tmpfs (/dev/shm), so that each write is paid (the system
# call, the copy) but not this VM's disk, whose writeback would make the
# figures noise; LOG_DIR=/some/dir puts it elsewhere.
# Reported: each setting's median, its ratio to this build's lines off (of
# the medians, and the median of the per-round ratios, which drift on a
# shared machine affects less), and the server's CPU time per request (all
# its threads, user and system, as the scheduler accounts it: what the log
# costs even when other work slows the machine down); each round also shows
# the lines written and dropped.
#
#   bench/request-log.sh [DURATION_SECS] [ROUNDS]     defaults: 10 3
#   bench/request-log.sh instructions
#
# BASELINE=/path/to/feedgate adds the same three settings served by that
# binary (another build, e.g. of an older commit), as "before, …".
#
# The server runs on the embedded SQLite default (one seeded article, read
# from L1 after the first request), pinned to core 0, with its request log
# thread; wrk (installed with apt-get if missing) runs on core 1, one thread,
# 32 connections. `instructions` instead counts, under valgrind's callgrind,
# every instruction of the server process (the log's thread included) while
# it serves 1,000 and then 5,000 keep-alive hits, and prints the difference
# per request: startup cancels out, and the count repeats to within a few
# per mille on a busy machine.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
ROUNDS=${2:-3}
PORT=18081
WORK=$(mktemp -d)
LOG=$(mktemp -p "${LOG_DIR:-/dev/shm}" feedgate-request-log.XXXXXX)
SERVER_PID=
trap 'kill $SERVER_PID 2>/dev/null || true; rm -rf "$WORK" "$LOG"' EXIT

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet --bin feedgate
cp "$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/release/feedgate" "$WORK/"

# wrk is one client standing in for many: lift the read limit (still checked).
export FEEDGATE_RATE_LIMIT__READ__LIMIT=1000000000 FEEDGATE_RATE_LIMIT__READ__WINDOW_SECS=1
export FEEDGATE_LISTEN=127.0.0.1:$PORT
(cd "$WORK" && RUST_LOG=warn ./feedgate seed --articles 10 >/dev/null)

# name | binary | RUST_LOG | format
CONFIGS=(
    "lines off|./feedgate|info,feedgate::request=warn|pretty"
    "lines, pretty|./feedgate|info|pretty"
    "lines, JSON|./feedgate|info|json"
)
if [ -n "${BASELINE:-}" ]; then
    cp "$BASELINE" "$WORK/before"
    CONFIGS+=(
        "before, off|./before|info,feedgate::request=warn|pretty"
        "before, pretty|./before|info|pretty"
        "before, JSON|./before|info|json"
    )
fi

start() {
    local bin=$1 filter=$2 format=$3 launcher=("${@:4}")
    (cd "$WORK" && RUST_LOG=$filter FEEDGATE_LOG__FORMAT=$format \
        exec "${launcher[@]}" "$bin" serve >"$LOG" 2>&1) & SERVER_PID=$!
    for _ in $(seq 600); do curl -sf "localhost:$PORT/healthz" >/dev/null && return; sleep 0.1; done
    echo "the server did not start:" >&2; cat "$LOG" >&2; exit 1
}

stop() {
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
}

article_uri() {
    curl -sf "localhost:$PORT/api/v1/articles?per_page=1" |
        python3 -c 'import json, sys; print("/api/v1/articles/%d" % json.load(sys.stdin)["items"][0]["id"])'
}

# The server's CPU time so far (every thread, user and system), in ns.
cpu_ns() { cat /proc/"$SERVER_PID"/task/*/schedstat | awk '{s += $1} END {printf "%d", s}'; }

# req/s, CPU µs per request, lines written, lines dropped
measure() {
    local bin=$1 filter=$2 format=$3 uri before report requests dropped
    start "$bin" "$filter" "$format" taskset -c 0
    uri=$(article_uri)
    curl -sf -H 'Accept-Encoding: gzip' "localhost:$PORT$uri" >/dev/null   # now in L1
    before=$(cpu_ns)
    report=$(taskset -c 1 wrk -t1 -c32 -d"${DURATION}s" -H 'Accept-Encoding: gzip' \
        "http://127.0.0.1:$PORT$uri")
    requests=$(awk '/requests in/ {print $1}' <<<"$report")
    cpu=$(awk -v t="$(($(cpu_ns) - before))" -v n="$requests" 'BEGIN {printf "%.2f", t / 1e3 / n}')
    dropped=$(curl -sf "localhost:$PORT/metrics" |
        awk '/^feedgate_log_lines_dropped_total / {print $2}')
    stop
    echo "$(awk '/Requests\/sec/ {printf "%d", $2}' <<<"$report") $cpu" \
        "$(grep -c 'feedgate::request' "$LOG" || true) ${dropped:-0}"
}

# Instructions per hit under callgrind: (Ir(5000) - Ir(1000)) / 4000, less
# quanta's clock calibration at startup, which loops for a set time and so
# runs a different number of instructions each time.
instructions() {
    local bin=$1 filter=$2 format=$3 n uri total calibration counts=()
    for n in 1000 5000; do
        start "$bin" "$filter" "$format" env TOKIO_WORKER_THREADS=1 \
            valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.out"
        uri=$(article_uri)
        python3 - "$PORT" "$uri" "$n" <<'PY'
import http.client, sys
port, uri, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
c = http.client.HTTPConnection("127.0.0.1", port)
for _ in range(n):
    c.request("GET", uri, headers={"Accept-Encoding": "gzip"}); r = c.getresponse(); r.read()
    assert r.status == 200, r.status
PY
        stop
        total=$(awk '/^totals:|^summary:/ {print $2; exit}' "$WORK/cg.out")
        calibration=$(callgrind_annotate --inclusive=yes "$WORK/cg.out" 2>/dev/null |
            awk '/quanta::Calibration::calibrate / {gsub(",", "", $1); print $1; exit}')
        counts+=("$((total - ${calibration:-0}))")
    done
    echo $(((counts[1] - counts[0]) / 4000))
}

median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

if [ "$DURATION" = instructions ]; then
    command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
    echo "== instructions per L1 hit (callgrind, the whole process)"
    for config in "${CONFIGS[@]}"; do
        IFS='|' read -r name bin filter format <<<"$config"
        printf '%-14s %8s\n' "$name" "$(instructions "$bin" "$filter" "$format")"
    done
    exit 0
fi

declare -A RPS RATIOS CPU
for round in $(seq "$ROUNDS"); do
    off=
    for config in "${CONFIGS[@]}"; do
        IFS='|' read -r name bin filter format <<<"$config"
        measure "$bin" "$filter" "$format" >"$WORK/result"
        read -r rps cpu lines dropped <"$WORK/result"
        off=${off:-$rps}
        ratio=$(awk -v a="$rps" -v b="$off" 'BEGIN {printf "%.3f", a / b}')
        RPS[$name]="${RPS[$name]:-} $rps"
        RATIOS[$name]="${RATIOS[$name]:-} $ratio"
        CPU[$name]="${CPU[$name]:-} $cpu"
        printf 'round %d  %-14s %8s req/s  %.3f  %6s CPU µs/req  %9s lines  %s dropped\n' \
            "$round" "$name" "$rps" "$ratio" "$cpu" "$lines" "$dropped"
    done
done

echo "== L1 hits of one article, gzip: median of $ROUNDS rounds (wrk -t1 -c32, ${DURATION}s)"
printf '%-14s %8s %16s %18s %12s\n' setting 'req/s' 'ratio (medians)' 'ratio (per round)' 'CPU µs/req'
base=$(median <<<"${RPS["lines off"]}")
for config in "${CONFIGS[@]}"; do
    name=${config%%|*}
    rps=$(median <<<"${RPS[$name]}")
    printf '%-14s %8s %16.3f %18s %12s\n' "$name" "$rps" \
        "$(awk -v a="$rps" -v b="$base" 'BEGIN {print a / b}')" "$(median <<<"${RATIOS[$name]}")" \
        "$(median <<<"${CPU[$name]}")"
done
