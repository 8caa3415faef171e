#!/usr/bin/env bash
# Feeds under live editing: cached reads while an author keeps editing the
# articles readers read. Over a seeded database of ARTICLES articles, with
# Redis (a key prefix of the run's own), feedgate serves this read mix
# (gzip accepted), drawn beforehand by bench/live_load.py:
#   60% an article, by Zipf(SKEW) popularity over the newest HOT published ids
#   20% page 1 of the main feed
#   12% page 1 of a tag's feed, by Zipf(SKEW) over the 30 biggest tags
#    8% a page by cursor, after=<an id drawn as for articles>
# while a separate writer PATCHes an article's summary (ids drawn as for
# articles) at a fixed rate, on a steady schedule, signed in as an admin
# (no If-Match: the API does not require it). For each write rate:
#   1. fresh instance(s), a fresh Redis prefix, the writer started;
#   2. WARMUP_SECS of closed-loop reads (not measured);
#   3. closed loop: wrk, CONNECTIONS connections, for DURATION_SECS;
#   4. open loop: oha at a fixed offered rate for DURATION_SECS, with
#      latency measured from when each request was due (so a slow answer
#      cannot hide the requests it delayed): p50, p99, p99.9.
# Per window it reads the deltas of /metrics (cache hits per tier, loads
# from the database, writes made again), of MariaDB's global Questions,
# Com_select and InnoDB row lock waits, and counts the writes due in it
# (done: 2xx; failed: anything else; with their latency and lateness) and
# the writes answered in it a second (applied: below the asked rate when
# the instance cannot take them).
# ROUNDS rounds run the write rates in turn; the tables give medians, and
# the ratio of each rate's throughput to the first rate's in the same round.
#
#   bench/live.sh [DURATION_SECS] [WARMUP_SECS] [ROUNDS]   defaults: 20 20 3
#
# WRITE_RATES="0 5 50" writes a second (the first is the reference: keep 0
# first); OPEN_RATE=N fixes oha's offered rate, else OPEN_SHARE (0.65) of
# the first rate's closed-loop throughput in round 1; INSTANCES=N (1) runs
# N instances over one Redis on ports 18161.. (all on core 0: reads
# spread over them by wrk thread and by oha URL, though oha keeps each
# connection on the instance of its first URL; writes round-robin);
# ARTICLES (1000000), HOT (100000), SKEW (1.1), CONNECTIONS (64), PATHS
# (1000000 pre-drawn reads); KEEP_DB=name reuses (or keeps) the seeded
# database (seeding a million takes 3-7 minutes); KEEP_TMP=1 keeps
# the drawn paths, logs and per-window figures.
# Needs wrk (apt-get) and oha (cargo install oha --locked), both installed
# if missing. feedgate runs on core 0; wrk, oha and the writer on core 1;
# MariaDB and Redis where the system puts them. MariaDB's counters are
# global: on a shared machine other clients add to them.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-20}
WARMUP=${2:-20}
ROUNDS=${3:-3}
read -r -a RATES <<<"${WRITE_RATES:-0 5 50}"
ARTICLES=${ARTICLES:-1000000}
HOT=${HOT:-100000}
SKEW=${SKEW:-1.1}
CONNECTIONS=${CONNECTIONS:-64}
PATHS=${PATHS:-1000000}
INSTANCES=${INSTANCES:-1}
OPEN_SHARE=${OPEN_SHARE:-0.65}
OPEN_RATE=${OPEN_RATE:-}
DB=${KEEP_DB:-feedgate_live_$RANDOM}
PREFIX=feedgate-live-$$-$RANDOM
FIRST_PORT=18161
ADMIN=live_admin ADMIN_PASSWORD=live-admin-password-0123
PORTS=()
for i in $(seq "$INSTANCES"); do PORTS+=($((FIRST_PORT + i - 1))); done

TMP=$(mktemp -d)
RESULTS=$TMP/results
mkdir -p "$RESULTS"
SERVER_PIDS=() WRITER_PID=

log() { echo "== $*" >&2; }

stop_servers() {
    local pid
    for pid in "${SERVER_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${SERVER_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    SERVER_PIDS=()
}

stop_writer() {
    # SIGTERM: the writer stops scheduling and waits for the writes due.
    [ -z "$WRITER_PID" ] || { kill "$WRITER_PID" 2>/dev/null || true; wait "$WRITER_PID" 2>/dev/null || true; }
    WRITER_PID=
}

drop_prefix() {
    redis-cli --scan --pattern "$PREFIX*" | xargs -r -d '\n' -n 500 redis-cli del >/dev/null || true
}

cleanup() {
    stop_writer
    stop_servers
    drop_prefix
    [ -n "${KEEP_DB:-}" ] || mysql -uroot -e "DROP DATABASE IF EXISTS $DB" || true
    if [ -n "${KEEP_TMP:-}" ]; then echo "live: kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

prepare() {
    scripts/services.sh >/dev/null
    command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
    if ! command -v oha >/dev/null; then
        log "installing oha (cargo install, a few minutes)"
        cargo install --locked --quiet oha
    fi
    log "building feedgate (release)"
    cargo build --release --quiet --bin feedgate
    BIN=$(cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/release/feedgate

    export DATABASE_URL=mysql://root@127.0.0.1:3306/$DB REDIS_URL=redis://127.0.0.1:6379/0
    export FEEDGATE_JWT_SECRET=bench-only-key-0123456789abcdef0123456789
    export FEEDGATE_CACHE__REDIS_PREFIX=$PREFIX-setup
    export RUST_LOG=warn
    # The load generators are one client address (and the writer one user)
    # standing in for many: lift the read and write limits (still checked).
    export FEEDGATE_RATE_LIMIT__READ__LIMIT=1000000000 FEEDGATE_RATE_LIMIT__READ__WINDOW_SECS=1
    export FEEDGATE_RATE_LIMIT__WRITE__LIMIT=1000000000 FEEDGATE_RATE_LIMIT__WRITE__WINDOW_SECS=1

    if ! mysql -uroot -e "USE $DB" 2>/dev/null; then
        mysql -uroot -e "CREATE DATABASE $DB"
        log "seeding $ARTICLES articles into MariaDB"
        "$BIN" seed --articles "$ARTICLES" >&2
    fi
    "$BIN" user create --username "$ADMIN" --password "$ADMIN_PASSWORD" --role admin >/dev/null

    mysql -uroot -N "$DB" -e "SELECT id FROM articles WHERE status = 'published'
        ORDER BY id DESC LIMIT $HOT" >"$TMP/ids"
    mysql -uroot -N "$DB" -e "SELECT label FROM feed_counts WHERE feed_kind = 2
        AND status = 'published' ORDER BY articles DESC, label LIMIT 30" >"$TMP/tags"
    local ports
    ports=$(IFS=,; echo "${PORTS[*]}")
    python3 bench/live_load.py paths "$TMP/ids" "$TMP/tags" "$PATHS" "$SKEW" live \
        "$TMP/paths" "$TMP/urls" "$ports"
    log "$(wc -l <"$TMP/ids") popular ids, $(wc -l <"$TMP/tags") tags, $PATHS reads drawn" \
        "($(sort -u "$TMP/paths" | wc -l) distinct)"
    cat bench/wrk_report.lua bench/live_hosts.lua bench/random_paths.lua >"$TMP/reads.lua"
}

# start_servers SUFFIX: INSTANCES instances on core 0 over the Redis prefix
# PREFIX-SUFFIX, once each answers and has its invalidation channel.
start_servers() {
    local suffix=$1 port ok
    for port in "${PORTS[@]}"; do
        FEEDGATE_LISTEN=127.0.0.1:$port FEEDGATE_CACHE__REDIS_PREFIX=$PREFIX-$suffix \
            taskset -c 0 "$BIN" serve >>"$TMP/server.log" 2>&1 &
        SERVER_PIDS+=($!)
    done
    for port in "${PORTS[@]}"; do
        ok=
        for _ in $(seq 300); do
            if curl -s "127.0.0.1:$port/readyz" | grep -q '"redis","status":"ok"'; then ok=1; break; fi
            sleep 0.1
        done
        [ -n "$ok" ] || { echo "live: the instance on port $port did not become ready" >&2; tail "$TMP/server.log" >&2; exit 1; }
    done
}

# Cache hits per tier, loads from the database and writes made again (a
# lost deadlock or lock wait, an overtaken write), summed over instances:
# "l1 l2 db retries" (signed-in users' records excluded).
tiers() {
    local port
    for port in "${PORTS[@]}"; do curl -s "127.0.0.1:$port/metrics"; done | awk '
        /^feedgate_cache_lookups_total/ && /result="hit"/ && !/route="user"/ {
            if (/tier="l1"/) l1 += $NF; else if (/tier="l2"/) l2 += $NF }
        /^feedgate_cache_fills_total/ && !/route="user"/ { db += $NF }
        /^feedgate_db_write_retries_total/ { retries += $NF }
        END { printf "%d %d %d %d\n", l1, l2, db, retries }'
}

# MariaDB's global counters: "questions selects row_lock_waits row_lock_ms".
db_counters() {
    mysql -uroot -N -e "SHOW GLOBAL STATUS WHERE Variable_name IN
        ('Questions', 'Com_select', 'Innodb_row_lock_waits', 'Innodb_row_lock_time')" |
        awk '{ v[$1] = $2 } END {
            print v["Questions"], v["Com_select"], v["Innodb_row_lock_waits"], v["Innodb_row_lock_time"] }'
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { print b - a }'; }

# window_stats BEFORE_TIERS AFTER_TIERS BEFORE_DB AFTER_DB SECONDS READS:
# hits per tier and loads from the database as % of reads, statements and
# SELECTs a second, writes made again, row lock waits and their time (ms).
window_stats() {
    echo "$1 $2 $3 $4 $5 $6" | awk '{
        n = $18; if (n < 1) n = 1
        printf "l1=%.1f l2=%.1f db=%.1f qps=%.0f sps=%.0f retries=%d lock_waits=%d lock_ms=%d",
            100 * ($5 - $1) / n, 100 * ($6 - $2) / n, 100 * ($7 - $3) / n,
            ($13 - $9) / $17, ($14 - $10) / $17, $8 - $4, $15 - $11, $16 - $12 }'
}

wrk_reads() {   # wrk_reads SECONDS: closed-loop reads, output to TMP/wrk.out
    LIVE_PORTS="${PORTS[*]}" taskset -c 1 wrk -t"$INSTANCES" -c"$CONNECTIONS" -d"$1s" --latency \
        -H 'Accept-Encoding: gzip' -s "$TMP/reads.lua" "http://127.0.0.1:${PORTS[0]}/" \
        -- "$TMP/paths" >"$TMP/wrk.out"
}

# measure ROUND RATE: one write rate. Appends a line of key=value pairs to
# RESULTS/RATE.closed and RESULTS/RATE.open: the reads (rps, p50, p99,
# p999 for open, errors, requests), window_stats, and the writes
# (live_load.py writes); the open line starts with offered=.
measure() {
    local round=$1 rate=$2 t0 t1 t2 t3 tb ta db_b db_a report closed open
    local writes_log=$TMP/writes.$round.$rate
    drop_prefix
    start_servers "r$round-w$rate"
    if [ "$rate" != 0 ]; then
        local urls
        urls=$(printf 'http://127.0.0.1:%s,' "${PORTS[@]}")
        taskset -c 1 python3 bench/live_load.py write "${urls%,}" "$ADMIN" "$ADMIN_PASSWORD" "$rate" \
            $((WARMUP + 2 * DURATION + 30)) "$TMP/ids" "$SKEW" "$writes_log" &
        WRITER_PID=$!
    fi
    wrk_reads "$WARMUP"

    tb=$(tiers) db_b=$(db_counters) t0=$(now)
    wrk_reads "$DURATION"
    t1=$(now) ta=$(tiers) db_a=$(db_counters)
    report=$(awk '$1 == "HITS-REPORT" {
        printf "rps=%.0f p50=%.2f p99=%.2f errors=%d requests=%d", $2 / $3 * 1e6, $4 / 1000, $5 / 1000,
            $6 + $7 + $8 + $9 + $10, $2 }' "$TMP/wrk.out")
    [ -n "$report" ] || { cat "$TMP/wrk.out" >&2; exit 1; }
    closed="$report $(window_stats "$tb" "$ta" "$db_b" "$db_a" "$(elapsed "$t0" "$t1")" \
        "$(echo "$report" | field - requests)")"
    printf '   round %d, %3s w/s, closed: %s\n' "$round" "$rate" "$closed" >&2

    if [ -z "$OPEN_RATE" ]; then
        OPEN_RATE=$(echo "$closed" | field - rps | awk -v s="$OPEN_SHARE" '{ printf "%d", $1 * s }')
        log "open loop offered rate: $OPEN_RATE req/s ($OPEN_SHARE of $rate w/s closed-loop throughput)"
    fi
    tb=$(tiers) db_b=$(db_counters) t2=$(now)
    taskset -c 1 oha --no-tui --output-format json -z "${DURATION}s" -q "$OPEN_RATE" \
        --latency-correction -w -c "$CONNECTIONS" \
        -H 'Accept-Encoding: gzip' --urls-from-file "$TMP/urls" >"$TMP/oha.json" 2>"$TMP/oha.err" ||
        { cat "$TMP/oha.err" >&2; exit 1; }
    t3=$(now) ta=$(tiers) db_a=$(db_counters)
    report=$(python3 bench/live_load.py oha "$TMP/oha.json")
    open="offered=$OPEN_RATE $report $(window_stats "$tb" "$ta" "$db_b" "$db_a" "$(elapsed "$t2" "$t3")" \
        "$(echo "$report" | field - requests)")"
    printf '   round %d, %3s w/s, open:   %s\n' "$round" "$rate" "$open" >&2

    # The writes due in each window, once all of them have answered.
    stop_writer
    stop_servers
    closed="$closed $(python3 bench/live_load.py writes "$writes_log" "$t0" "$t1")"
    open="$open $(python3 bench/live_load.py writes "$writes_log" "$t2" "$t3")"
    echo "$closed" >>"$RESULTS/$rate.closed"
    echo "$open" >>"$RESULTS/$rate.open"
    printf '   writes, closed: ok=%s\n   writes, open:   ok=%s\n' "${closed#* ok=}" "${open#* ok=}" >&2
}

# field FILE KEY: the values of KEY=value in each line of FILE (- for stdin).
field() { awk -v k="$2=" '{ for (i = 1; i <= NF; i++) if (index($i, k) == 1) print substr($i, length(k) + 1) }' "$1"; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
med() { field "$1" "$2" | median; }
sum() { field "$1" "$2" | awk '{ n += $1 } END { print n + 0 }'; }
# Median over rounds of KEY in FILE / KEY in REFERENCE, same round.
ratio_median() { paste <(field "$1" "$3") <(field "$2" "$3") | awk '{ print $1 / $2 }' | median; }

report() {
    local rate c o reference=$RESULTS/${RATES[0]}.closed
    echo
    echo "\`${COMMAND}\`"
    echo
    echo "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), load average" \
        "$(cut -d' ' -f1-3 /proc/loadavg) at the end: $(mysql -uroot -N "$DB" -e 'SELECT COUNT(*) FROM articles')" \
        "articles; $INSTANCES instance(s) on core 0, Redis; reads over $(wc -l <"$TMP/ids") popular ids" \
        "and $(wc -l <"$TMP/tags") tags, Zipf($SKEW); wrk -c$CONNECTIONS and oha -c$CONNECTIONS on core 1;" \
        "${WARMUP}s warm-up, ${DURATION}s per window, medians of $ROUNDS rounds."
    echo
    echo "Closed loop (wrk):"
    echo
    echo "| writes/s | req/s | ratio to ${RATES[0]} w/s | p50 ms | p99 ms | L1 / L2 / DB % | DB statements/s (SELECTs/s) | writes done / failed | writes applied/s | write p50 / p99 ms | latest write, s late | row lock waits (ms) | read errors |"
    echo "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
    for rate in "${RATES[@]}"; do
        c=$RESULTS/$rate.closed
        printf '| %s | %.0f | %.2f | %.2f | %.2f | %s / %s / %s | %.0f (%.0f) | %s / %s | %.1f | %.0f / %.0f | %.1f | %s (%s) | %s |\n' \
            "$rate" "$(med "$c" rps)" "$(ratio_median "$c" "$reference" rps)" "$(med "$c" p50)" \
            "$(med "$c" p99)" "$(med "$c" l1)" "$(med "$c" l2)" "$(med "$c" db)" "$(med "$c" qps)" \
            "$(med "$c" sps)" "$(sum "$c" ok)" "$(sum "$c" failed)" "$(med "$c" applied)" \
            "$(med "$c" wp50)" "$(med "$c" wp99)" "$(med "$c" late | awk '{ print $1 / 1000 }')" \
            "$(med "$c" lock_waits)" "$(med "$c" lock_ms)" "$(sum "$c" errors)"
    done
    echo
    echo "Open loop (oha at a fixed offered rate, latency from when each request was due):"
    echo
    echo "| writes/s | offered req/s | achieved req/s | p50 ms | p99 ms | p99.9 ms | errors | L1 / L2 / DB % | DB statements/s | writes done / failed | writes applied/s |"
    echo "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
    for rate in "${RATES[@]}"; do
        o=$RESULTS/$rate.open
        printf '| %s | %s | %.0f | %.2f | %.2f | %.2f | %s | %s / %s / %s | %.0f | %s / %s | %.1f |\n' "$rate" \
            "$(med "$o" offered)" "$(med "$o" rps)" "$(med "$o" p50)" "$(med "$o" p99)" "$(med "$o" p999)" \
            "$(sum "$o" errors)" "$(med "$o" l1)" "$(med "$o" l2)" "$(med "$o" db)" "$(med "$o" qps)" \
            "$(sum "$o" ok)" "$(sum "$o" failed)" "$(med "$o" applied)"
    done
    echo
    echo "L1 / L2 / DB: cache hits per tier and loads from MariaDB, per read (route \`user\` excluded)."
    echo "DB statements/s: MariaDB's global Questions (Com_select) a second; row lock waits: InnoDB's"
    echo "in the window (other clients of the server add to all three). Writes done / failed: those"
    echo "due in the window (answered later if late), summed over rounds; applied/s: writes answered"
    echo "in the window a second; write latency from sending; lateness from due to sent. Ratio:"
    echo "median over rounds of req/s over the ${RATES[0]} w/s figure of the same round. Medians of"
    echo "rounds, except sums where said. Write statuses, all rounds:" \
        "$(cat "$RESULTS"/*.closed "$RESULTS"/*.open | field - statuses | tr ',' '\n' | grep -v '^-$' |
            awk -F: '{ n[$1] += $2 } END { for (s in n) printf "%s: %d, ", s, n[s] }' | sed 's/, $//');" \
        "writes made again (retries): $(cat "$RESULTS"/*.closed "$RESULTS"/*.open | field - retries |
            awk '{ n += $1 } END { print n + 0 }')."
}

COMMAND="$(env | grep -E '^(ARTICLES|KEEP_DB|HOT|SKEW|CONNECTIONS|PATHS|INSTANCES|OPEN_SHARE|OPEN_RATE|WRITE_RATES)=' |
    sort | tr '\n' ' ')bench/live.sh${*:+ $*}"
prepare
log "measuring: ${RATES[*]} writes/s, $ROUNDS rounds of ${WARMUP}s warm-up + ${DURATION}s closed + ${DURATION}s open"
for ROUND in $(seq "$ROUNDS"); do
    for RATE in "${RATES[@]}"; do
        measure "$ROUND" "$RATE"
    done
done
report
