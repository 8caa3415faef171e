#!/usr/bin/env bash
# Where a cache hit's time goes: instructions per request, counted by
# valgrind's callgrind (repeatable to a few per mille on a busy machine),
# for feedgate and for the ceiling (bench/ceiling.rs answering the same
# bytes), and feedgate's costliest functions per request.
#
#   bench/hit-profile.sh [PATH] [BINARY]
#
# PATH defaults to an article detail (/api/v1/articles/1, identity);
# BINARY to this checkout's release build, so an older build can be
# profiled the same way. Needs valgrind (apt-get install valgrind).
# Instructions per request = (Ir(N2) - Ir(N1)) / (N2 - N1) over keep-alive
# requests, so start-up cancels out; kernel time (the socket) is not
# counted and is the same for both servers.
set -euo pipefail
cd "$(dirname "$0")/.."
REQUEST_PATH=${1:-/api/v1/articles/1}
PORT=18131
DB=feedgate_profile_$RANDOM
N1=500 N2=1500
WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
    kill "$SERVER_PID" 2>/dev/null || true
    mysql -uroot -e "DROP DATABASE IF EXISTS $DB" || true
    redis-cli --scan --pattern "$DB*" | xargs -r -n 500 redis-cli del >/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

scripts/services.sh >/dev/null
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
cargo build --release --quiet --bin feedgate --example ceiling
TARGET=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/release
BIN=${2:-$TARGET/feedgate}

export DATABASE_URL=mysql://root@127.0.0.1:3306/$DB REDIS_URL=redis://127.0.0.1:6379/0
export FEEDGATE_JWT_SECRET=bench-only-key-0123456789abcdef0123456789
export FEEDGATE_CACHE__REDIS_PREFIX=$DB FEEDGATE_LISTEN=127.0.0.1:$PORT RUST_LOG=warn
export FEEDGATE_RATE_LIMIT__READ__LIMIT=1000000000 FEEDGATE_RATE_LIMIT__READ__WINDOW_SECS=1
mysql -uroot -e "CREATE DATABASE $DB"
"$BIN" seed --articles 1000 >/dev/null 2>&1

# Keep-alive GETs of PATH: the first until the server answers, then N more.
requests() {
    python3 - "$PORT" "$1" "$REQUEST_PATH" <<'PY'
import http.client, sys, time
port, n, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
for _ in range(600):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port)
        c.request("GET", path); c.getresponse().read(); break
    except OSError:
        time.sleep(0.2)
for _ in range(n):
    c.request("GET", path); r = c.getresponse(); r.read()
    assert r.status == 200, r.status
PY
}

# callgrind NAME N COMMAND...: serves N requests under callgrind.
callgrind() {
    local name=$1 n=$2
    shift 2
    TOKIO_WORKER_THREADS=1 valgrind --tool=callgrind \
        --callgrind-out-file="$WORK/$name.$n" "$@" >/dev/null 2>&1 &
    SERVER_PID=$!
    requests "$n"
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
}

total() { awk '/^totals:|^summary:/ {print $2; exit}' "$1"; }

per_request() {
    local name=$1
    echo $((($(total "$WORK/$name.$N2") - $(total "$WORK/$name.$N1")) / (N2 - N1)))
}

# The ceiling answers the bytes feedgate answers for PATH.
"$BIN" serve >/dev/null 2>&1 & SERVER_PID=$!
requests 0
mkdir "$WORK/captures"
curl -s -D "$WORK/captures/hit.head" -o "$WORK/captures/hit.body" "127.0.0.1:$PORT$REQUEST_PATH"
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true

for n in $N1 $N2; do
    callgrind feedgate "$n" "$BIN" serve
    REQUEST_PATH_SAVED=$REQUEST_PATH REQUEST_PATH=/hit
    callgrind ceiling "$n" "$TARGET/examples/ceiling" "127.0.0.1:$PORT" "$WORK/captures"
    REQUEST_PATH=$REQUEST_PATH_SAVED
done

feedgate=$(per_request feedgate)
ceiling=$(per_request ceiling)
echo "== instructions per request, GET $REQUEST_PATH (callgrind, user space)"
printf '%-10s %8d\n%-10s %8d   (%.2fx the ceiling)\n' ceiling "$ceiling" feedgate "$feedgate" \
    "$(echo "$feedgate / $ceiling" | bc -l)"
echo "== feedgate's costliest functions (self cost per request, start-up cancelled out)"
for n in $N1 $N2; do callgrind_annotate "$WORK/feedgate.$n" >"$WORK/annotated.$n" 2>/dev/null; done
python3 - "$WORK/annotated.$N1" "$WORK/annotated.$N2" $((N2 - N1)) <<'PY'
import re, sys
def costs(path):
    found = {}
    for line in open(path):
        m = re.match(r"\s*([\d,]+) \([ \d.%]+\)\s+(\S.*?) \[", line)
        if m:
            found[m.group(2)] = int(m.group(1).replace(",", ""))
    return found
before, after, n = costs(sys.argv[1]), costs(sys.argv[2]), int(sys.argv[3])
per = sorted(((after[f] - before.get(f, 0)) / n, f) for f in after)
for cost, name in reversed(per[-25:]):
    print(f"{cost:8.0f}  {name[:150]}")
PY
