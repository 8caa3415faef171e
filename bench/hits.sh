#!/usr/bin/env bash
# The hit path against its ceiling, side by side in one run. Every scenario
# is a pair: the ceiling (bench/ceiling.rs, a bare axum server answering the
# very bytes feedgate answered, captured with curl) then feedgate, repeated
# ROUNDS times alternately; medians are reported, with each feedgate figure
# as a ratio to its ceiling. The scenarios:
#   a. /healthz                         the middleware floor
#   b. article detail, L1 hit, identity
#   c. article detail, L1 hit, gzip
#   d. list page, L1 hit, gzip
#   e. article detail, 304 (If-None-Match)
#   f. L1 miss, L2 hit: a second instance with no L1 over the same Redis
#      prefix, random ids from HOT_IDS ids put into Redis beforehand
#   g. miss to MariaDB: an instance with no L1 and an empty Redis prefix,
#      random ids over every article
#   h. mixed: Zipf-popular ids, 95% reads (details and list pages), 5%
#      PATCHes by an admin that invalidate (bench/mixed.lua)
# f, g and h are compared with the ceiling's identity detail.
#
#   bench/hits.sh [DURATION_SECS] [ROUNDS]       defaults: 10 3
#
# ARTICLES=N seeds N articles instead of 1,000,000 (about 3 minutes);
# KEEP_DB=name reuses (or keeps) that database instead of a throwaway one;
# HOT_IDS (10000) sizes scenario f's set; SKEW (1.1) is h's Zipf exponent;
# KEEP_TMP=1 keeps the captured responses and per-round figures.
# Needs wrk (installed with apt-get if missing). The server is pinned to
# core 0 and wrk to core 1. Figures compare with each other, not absolutely:
# this machine is shared.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
ROUNDS=${2:-3}
ARTICLES=${ARTICLES:-1000000}
HOT_IDS=${HOT_IDS:-10000}
SKEW=${SKEW:-1.1}
DB=${KEEP_DB:-feedgate_hits_$RANDOM}
# Every Redis key of this run starts with this; each instance adds a suffix.
PREFIX=feedgate-hits-$$-$RANDOM
PORT_A=18121 PORT_B=18122 PORT_C=18123 PORT_CEILING=18129
CONNECTIONS=64
ADMIN=hits_admin ADMIN_PASSWORD=hits-admin-password-0123

TMP=$(mktemp -d)
CAPTURES=$TMP/captures RESULTS=$TMP/results
mkdir -p "$CAPTURES" "$RESULTS"
declare -A PID=()   # server name -> pid, for the cleanup

log() { echo "== $*" >&2; }

cleanup() {
    local pid
    for pid in "${PID[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ -n "${KEEP_DB:-}" ] || mysql -uroot -e "DROP DATABASE IF EXISTS $DB" || true
    redis-cli --scan --pattern "$PREFIX*" | xargs -r -d '\n' -n 500 redis-cli del >/dev/null || true
    if [ -n "${KEEP_TMP:-}" ]; then echo "hits: kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM   # so that an interrupted run cleans up too

prepare() {
    scripts/services.sh >/dev/null
    command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
    log "building feedgate and the ceiling (release)"
    cargo build --release --quiet --bin feedgate --example ceiling
    BIN=$(cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/release

    export DATABASE_URL=mysql://root@127.0.0.1:3306/$DB REDIS_URL=redis://127.0.0.1:6379/0
    export FEEDGATE_JWT_SECRET=bench-only-key-0123456789abcdef0123456789
    export FEEDGATE_CACHE__REDIS_PREFIX=$PREFIX-seed
    # No request log lines: at these rates they would be what is measured.
    export RUST_LOG=warn
    # wrk is one client address (and h one user) standing in for many
    # clients: lift the read and write limits; they are still checked.
    export FEEDGATE_RATE_LIMIT__READ__LIMIT=1000000000 FEEDGATE_RATE_LIMIT__READ__WINDOW_SECS=1
    export FEEDGATE_RATE_LIMIT__WRITE__LIMIT=1000000000 FEEDGATE_RATE_LIMIT__WRITE__WINDOW_SECS=1

    if ! mysql -uroot -e "USE $DB" 2>/dev/null; then
        mysql -uroot -e "CREATE DATABASE $DB"
        log "seeding $ARTICLES articles into MariaDB"
        "$BIN/feedgate" seed --articles "$ARTICLES" >&2
    fi
    "$BIN/feedgate" user create --username $ADMIN --password $ADMIN_PASSWORD --role admin >/dev/null
    # Anonymous readers see published articles only (the rest are 404):
    # every scenario draws from these, newest (most popular in h) first.
    mysql -uroot -N "$DB" -e "SELECT id FROM articles WHERE status = 'published' ORDER BY id DESC" \
        >"$TMP/ids"
    shuf -n "$HOT_IDS" "$TMP/ids" >"$TMP/hot_ids"
    log "$(wc -l <"$TMP/ids") published articles; $(wc -l <"$TMP/hot_ids") in f's set"
}

# start NAME PORT COMMAND...: a server on core 0, once it answers.
start() {
    local name=$1 port=$2
    shift 2
    taskset -c 0 "$@" &
    PID[$name]=$!
    for _ in $(seq 200); do
        curl -sf -o /dev/null "127.0.0.1:$port/healthz" && return 0
        kill -0 "${PID[$name]}" 2>/dev/null || break
        sleep 0.1
    done
    echo "hits: $name did not start on port $port" >&2
    return 1
}

# instance NAME PORT PREFIX_SUFFIX [L1_MAX_BYTES]: feedgate with its own
# Redis prefix (PREFIX-SUFFIX) and, if given, L1 budget. 0 turns L1 off:
# moka then keeps nothing, where a budget of 1 byte would still hold each
# entry until its next housekeeping.
instance() {
    local name=$1 port=$2 suffix=$3 l1=${4:-}
    start "$name" "$port" env FEEDGATE_LISTEN="127.0.0.1:$port" \
        FEEDGATE_CACHE__REDIS_PREFIX="$PREFIX-$suffix" ${l1:+FEEDGATE_CACHE__L1_MAX_BYTES=$l1} \
        "$BIN/feedgate" serve
}

stop() {
    local name=$1
    kill "${PID[$name]}" 2>/dev/null || true
    wait "${PID[$name]}" 2>/dev/null || true
    unset "PID[$name]"
}

# curl as wrk asks: no User-Agent or Accept of its own.
fetch() { curl -s -H 'User-Agent:' -H 'Accept:' "$@"; }

# capture NAME URL [curl options...]: feedgate's answer to a request, once
# its caches are warm, for the ceiling to serve as /NAME.
capture() {
    local name=$1 url=$2
    shift 2
    fetch -o /dev/null "$@" "$url"
    fetch -D "$CAPTURES/$name.head" -o "$CAPTURES/$name.body" "$@" "$url"
    touch "$CAPTURES/$name.body"   # curl writes no file for an empty body (304)
    head -1 "$CAPTURES/$name.head" | tr -d '\r' | sed "s|^|   $name: |" >&2
}

# Puts every id of FILE into the server's caches, 16 requests at a time.
warm_ids() {
    local port=$1 file=$2
    sed "s|.*|url = \"http://127.0.0.1:$port/api/v1/articles/&\"\noutput = /dev/null|" "$file" \
        >"$TMP/warm.curl"
    curl -s --no-progress-meter --parallel --parallel-max 16 -K "$TMP/warm.curl"
}

# wrk_run SECONDS URL SCRIPT [wrk options...] [-- script args...]: wrk's
# output, with a last line "HITS-WRKCPU user_secs system_secs".
wrk_run() {
    local seconds=$1 url=$2 script=$3
    shift 3
    local options=() args=() TIMEFORMAT='HITS-WRKCPU %U %S'
    while [ $# -gt 0 ] && [ "$1" != -- ]; do options+=("$1"); shift; done
    [ $# -eq 0 ] || { shift; args=("$@"); }
    # wrk reads one script: put the report (its done()) in front.
    cat bench/wrk_report.lua "$script" >"$TMP/run.lua"
    { time taskset -c 1 wrk -t1 -c$CONNECTIONS -d"${seconds}s" --latency -s "$TMP/run.lua" \
        "${options[@]}" "$url" -- "${args[@]}"; } 2>&1
}

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# measured_run PID URL SCRIPT [wrk options...] [-- script args...]: one
# run of DURATION against the server PID; keeps wrk's output in
# $TMP/last.out and prints "requests duration_us p50_us p99_us errors
# server_cpu_% wrk_cpu_%". A core at 100% is saturated.
measured_run() {
    local pid=$1 ticks start wall
    shift
    ticks=$(cpu_ticks "$pid")
    start=$(date +%s%N)
    wrk_run "$DURATION" "$@" >"$TMP/last.out"
    wall=$(($(date +%s%N) - start))
    ticks=$(($(cpu_ticks "$pid") - ticks))
    awk -v ticks=$ticks -v hz="$(getconf CLK_TCK)" -v wall=$wall '
        $1 == "HITS-REPORT" { report = $2 " " $3 " " $4 " " $5 " " $6 + $7 + $8 + $9 + $10 }
        $1 == "HITS-WRKCPU" { wrk = $2 + $3 }
        END {
            if (!report) exit 1
            printf "%s %.0f %.0f\n", report, 100 * ticks / hz / (wall / 1e9), 100 * wrk / (wall / 1e9)
        }' "$TMP/last.out" || { cat "$TMP/last.out" >&2; return 1; }
}

# Cache lookups answered by L1 and L2, and loads from the database, so far.
tiers() {
    curl -s "127.0.0.1:$1/metrics" | awk '
        /^feedgate_cache_lookups_total/ && /result="hit"/ && !/route="user"/ {
            if (/tier="l1"/) l1 += $NF; else if (/tier="l2"/) l2 += $NF }
        /^feedgate_cache_fills_total/ && !/route="user"/ { db += $NF }
        END { printf "%d %d %d\n", l1, l2, db }'
}

# Scenario set-ups: each sets the feedgate side of the next pair
# (FG, FG_URL, SCRIPT, OPTIONS, ARGS) and the ceiling path CEILING.
EMPTY=$TMP/empty.lua
: >"$EMPTY"
plain() {   # plain NAME FEEDGATE_PATH [wrk options...]
    CEILING=/$1 FG=a FG_URL=http://127.0.0.1:$PORT_A$2 SCRIPT=$EMPTY ARGS=()
    shift 2
    OPTIONS=("$@")
}
setup_healthz() { plain healthz /healthz; }
setup_detail() { plain detail "/api/v1/articles/$ID"; }
setup_detail_gzip() { plain detail_gzip "/api/v1/articles/$ID" -H 'Accept-Encoding: gzip'; }
setup_list_gzip() { plain list_gzip "$LIST" -H 'Accept-Encoding: gzip'; }
setup_not_modified() { plain not_modified "/api/v1/articles/$ID" -H "If-None-Match: $ETAG"; }
setup_l2() {
    if [ -z "${PID[b]:-}" ]; then
        # Just before use, so every entry is still fresh in Redis.
        log "putting $(wc -l <"$TMP/hot_ids") articles into Redis through instance a"
        warm_ids $PORT_A "$TMP/hot_ids"
        instance b $PORT_B a 0
    fi
    CEILING=/detail FG=b FG_URL=http://127.0.0.1:$PORT_B/ SCRIPT=bench/random_ids.lua
    OPTIONS=() ARGS=("$TMP/hot_ids")
}
setup_database() {
    # A new instance and an empty Redis prefix every round.
    [ -z "${PID[c]:-}" ] || stop c
    instance c $PORT_C "db$ROUND" 0
    CEILING=/detail FG=c FG_URL=http://127.0.0.1:$PORT_C/ SCRIPT=bench/random_ids.lua
    OPTIONS=() ARGS=("$TMP/ids")
}
setup_mixed() {
    local token
    token=$(curl -sf -H 'Content-Type: application/json' \
        -d "{\"grant_type\":\"password\",\"username\":\"$ADMIN\",\"password\":\"$ADMIN_PASSWORD\"}" \
        "127.0.0.1:$PORT_A/api/v1/tokens" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')
    CEILING=/detail FG=a FG_URL=http://127.0.0.1:$PORT_A/ SCRIPT=bench/mixed.lua
    OPTIONS=() ARGS=("$TMP/ids" "$token" "$SKEW")
}
# Servers no longer needed after their scenario leave core 0 to the rest.
finish_l2() { stop b; }
finish_database() { stop c; }

SCENARIOS=(healthz detail detail_gzip list_gzip not_modified l2 database mixed)
declare -A LABEL=(
    [healthz]="a. /healthz (floor)"
    [detail]="b. detail, L1 hit, identity"
    [detail_gzip]="c. detail, L1 hit, gzip"
    [list_gzip]="d. list page, L1 hit, gzip"
    [not_modified]="e. detail, 304"
    [l2]="f. detail, L1 miss, L2 hit *"
    [database]="g. detail, miss to MariaDB *"
    [mixed]="h. mixed 95/5, Zipf ids *"
)

# measure KEY: ROUNDS alternating pairs, one line per round in RESULTS/KEY:
#   feedgate_rps ceiling_rps ratio p50_ms p99_ms errors l1_% l2_% db_% rss_mb
#   feedgate_cpu_% ceiling_cpu_% wrk_cpu_%_at_ceiling
measure() {
    local key=$1 ceiling feedgate before after port rss
    for ROUND in $(seq "$ROUNDS"); do
        "setup_$key"
        port=${FG_URL#http://127.0.0.1:}
        port=${port%%/*}
        ceiling=$(measured_run "${PID[ceiling]}" "http://127.0.0.1:$PORT_CEILING$CEILING" "$EMPTY" \
            "${OPTIONS[@]}")
        # Warm the connections, pools and caches this scenario uses.
        wrk_run 1 "$FG_URL" "$SCRIPT" "${OPTIONS[@]}" -- "${ARGS[@]}" >/dev/null
        before=$(tiers "$port")
        feedgate=$(measured_run "${PID[$FG]}" "$FG_URL" "$SCRIPT" "${OPTIONS[@]}" -- "${ARGS[@]}")
        after=$(tiers "$port")
        awk -v round="$ROUND" '$1 == "HITS-STATUS" { print round, $2, $3 }' "$TMP/last.out" \
            >>"$RESULTS/$key.statuses"
        rss=$(awk '/^VmRSS/ { print $2 }' "/proc/${PID[$FG]}/status")
        echo "$ceiling $feedgate $before $after $rss" | awk '{
            # $1-$7: the ceiling, $8-$14: feedgate (requests, duration_us,
            # p50_us, p99_us, errors, server CPU %, wrk CPU %); $15-$17 and
            # $18-$20: L1 hits, L2 hits, database loads before and after.
            crps = $1 / $2 * 1e6; frps = $8 / $9 * 1e6
            printf "%.0f %.0f %.3f %.2f %.2f %d %.0f %.0f %.0f %.0f %d %d %d\n",
                frps, crps, frps / crps, $10 / 1000, $11 / 1000, $12,
                100 * ($18 - $15) / $8, 100 * ($19 - $16) / $8, 100 * ($20 - $17) / $8,
                $21 / 1024, $13, $6, $7 }' >>"$RESULTS/$key"
        printf '   %-32s round %d: %s\n' "${LABEL[$key]}" "$ROUND" "$(tail -1 "$RESULTS/$key")" >&2
    done
    if declare -F "finish_$key" >/dev/null; then "finish_$key"; fi
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
column_median() { awk -v c="$2" '{ print $c }' "$1" | median; }

report() {
    local key file
    echo
    echo "\`${COMMAND}\`"
    echo
    echo "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')):" \
        "$(wc -l <"$TMP/ids") published of $(mysql -uroot -N "$DB" -e 'SELECT COUNT(*) FROM articles')" \
        "articles; wrk -t1 -c$CONNECTIONS, ${DURATION}s per run, medians of $ROUNDS rounds."
    echo
    echo "| scenario | feedgate req/s | ceiling req/s | ratio | p50 ms | p99 ms | RSS MB | errors | L1 / L2 / DB % | CPU % feedgate / ceiling / wrk |"
    echo "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
    for key in "${SCENARIOS[@]}"; do
        file=$RESULTS/$key
        printf '| %s | %.0f | %.0f | %.2f | %.2f | %.2f | %s | %s | %s / %s / %s | %s / %s / %s |\n' \
            "${LABEL[$key]}" "$(column_median "$file" 1)" "$(column_median "$file" 2)" \
            "$(column_median "$file" 3)" "$(column_median "$file" 4)" "$(column_median "$file" 5)" \
            "$(tail -1 "$file" | awk '{ print $10 }')" "$(awk '{ n += $6 } END { print n }' "$file")" \
            "$(column_median "$file" 7)" "$(column_median "$file" 8)" "$(column_median "$file" 9)" \
            "$(column_median "$file" 11)" "$(column_median "$file" 12)" "$(column_median "$file" 13)"
    done
    echo
    echo "Ratio: median over rounds of feedgate / ceiling in the same pair; * against the ceiling's"
    echo "identity detail. Errors: wrk's non-2xx/3xx responses and socket errors, all rounds."
    echo "L1 / L2 / DB: cache hits per tier and loads from MariaDB per request. RSS: feedgate's,"
    echo "after the last round. CPU: of the server's core and of wrk's core during the ceiling run"
    echo "(wrk near 100% means the ceiling figure is wrk's limit, not the server's)."
    if [ -s "$RESULTS/mixed.statuses" ]; then
        echo "h statuses, all rounds:" \
            "$(awk '{ n[$2] += $3 } END { for (s in n) printf "%s: %d, ", s, n[s] }' "$RESULTS/mixed.statuses" |
                sed 's/, $//')."
    fi
}

COMMAND="$(env | grep -E '^(ARTICLES|KEEP_DB|HOT_IDS|SKEW)=' | tr '\n' ' ')bench/hits.sh $*"
prepare

log "starting instance a (L1 on) and capturing its answers"
instance a $PORT_A a
ID=$(head -1 "$TMP/ids")
LIST="/api/v1/articles?per_page=20"
capture healthz "http://127.0.0.1:$PORT_A/healthz"
capture detail "http://127.0.0.1:$PORT_A/api/v1/articles/$ID"
capture detail_gzip "http://127.0.0.1:$PORT_A/api/v1/articles/$ID" -H 'Accept-Encoding: gzip'
capture list_gzip "http://127.0.0.1:$PORT_A$LIST" -H 'Accept-Encoding: gzip'
ETAG=$(awk 'tolower($1) == "etag:" { print $2 }' "$CAPTURES/detail.head" | tr -d '\r')
capture not_modified "http://127.0.0.1:$PORT_A/api/v1/articles/$ID" -H "If-None-Match: $ETAG"
start ceiling $PORT_CEILING "$BIN/examples/ceiling" "127.0.0.1:$PORT_CEILING" "$CAPTURES"

log "measuring: ceiling then feedgate, $ROUNDS rounds of ${DURATION}s each"
for key in "${SCENARIOS[@]}"; do measure "$key"; done
report
