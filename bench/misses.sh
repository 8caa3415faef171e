#!/usr/bin/env bash
# Cache misses against the database's own rate for the same statements,
# side by side in interleaved rounds (medians reported). feedgate runs with
# L1 off and no Redis, so every request is a load from MariaDB; the
# database then runs the very statements of those loads, with the same
# values, from mariadb-slap with as many clients as feedgate has
# connections (and pool connections). Scenarios:
#   detail       GET /api/v1/articles/{id}, ids drawn at random from IDS
#                published ids; one statement (FIND_ARTICLE)
#   detail gzip  the same with Accept-Encoding: gzip (the same statement)
#   tag          page 1 of a tag, over every tag; three statements (the
#                tag's id, the page, the feed's kept size)
#   cursor       ?after=<id> on the main feed, over the same ids; three
#                statements (the cursor's sort key, the page, the kept size)
# The database is measured two ways, both mariadb-slap:
#   slap         one mariadb-slap with --concurrency=N. Each of its clients
#                runs the one list of statements from its start, so every
#                row is read by the N clients one after another and N-1 of
#                N reads find it in the buffer pool.
#   own order    N mariadb-slap processes of one client each, each running
#                the same statements in its own random order: the access
#                pattern wrk's random draw gives feedgate.
# Before measuring, the statements below are checked against the ones
# feedgate runs (sqlx's statement log): a change in src/store makes the
# script stop and show the difference.
#
#   bench/misses.sh [DURATION_SECS] [ROUNDS]     defaults: 10 3
#   bench/misses.sh profile [BINARY]             instructions per miss
#   bench/misses.sh redis [BINARY]               Redis memory per entry
#
# profile counts, under callgrind, the instructions feedgate spends per miss
# (one keep-alive client, each request a different id, N2 minus N1
# requests so start-up cancels out) for a detail miss (identity, gzip, br)
# and the two list misses, and where they go (bench/miss_profile.py).
# redis fills a Redis of its own (a private redis-server on port 16391)
# with REDIS_ENTRIES articles (2,000) and 30 tag pages, read once in every
# coding, and prints Redis' used_memory (INFO memory) per entry.
# BINARY defaults to this checkout's release build, so an older build can
# be profiled and measured the same way.
#
# ARTICLES=N seeds N articles (1,000,000; 10,000 for profile); KEEP_DB=name
# reuses (or keeps) that database; IDS=N draws N published ids (100,000;
# IDS=2000 makes a set whose rows all fit in a default 128 MB buffer pool);
# CONNECTIONS=N (16) is wrk's connections, feedgate's pool and the
# database's clients; FEEDGATE_BIN=path measures that binary (an older
# build, for a before/after pair) instead of this checkout's. KEEP_TMP=1 keeps statement files and per-round
# figures. Needs wrk and mariadb-slap (valgrind for profile); feedgate is
# pinned to core 0, wrk and mariadb-slap to core 1; MariaDB runs where the
# system puts it. Figures compare with each other, not absolutely: this
# machine is shared, and MariaDB's counters are global.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=run
if [ "${1:-}" = profile ] || [ "${1:-}" = redis ]; then
    MODE=$1
    shift
fi
DURATION=${1:-10}
ROUNDS=${2:-3}
[ "$MODE" = run ] || { DURATION=0 ROUNDS=0; }
ARTICLES=${ARTICLES:-$([ "$MODE" = profile ] && echo 10000 || echo 1000000)}
IDS=${IDS:-100000}
CONNECTIONS=${CONNECTIONS:-16}
DB=${KEEP_DB:-feedgate_misses_$RANDOM}
declare -A PORTS=([run]=18151 [profile]=18152 [redis]=18153)
PORT=${PORTS[$MODE]}
export MYSQL_PWD=
SLAP=(taskset -c 1 mariadb-slap -uroot -h127.0.0.1 -P3306 --protocol=tcp --create-schema="$DB" --delimiter=";"
    --iterations=1 --no-drop)

TMP=$(mktemp -d)
RESULTS=$TMP/results
mkdir -p "$RESULTS" "$TMP/sql"
SERVER_PID=

log() { echo "== $*" >&2; }

cleanup() {
    [ -z "$SERVER_PID" ] || kill "$SERVER_PID" 2>/dev/null || true
    [ -z "${REDIS_PID:-}" ] || kill "$REDIS_PID" 2>/dev/null || true
    wait 2>/dev/null || true
    [ -n "${KEEP_DB:-}" ] || mysql -uroot -e "DROP DATABASE IF EXISTS $DB" || true
    if [ -n "${KEEP_TMP:-}" ]; then echo "misses: kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The statements of each load, as src/store runs them (`?` for values).
FIND_ARTICLE="SELECT a.id, a.slug, a.title, a.summary, a.status, a.tag_list, a.author_id, u.username AS author_username, a.created_at, a.updated_at, a.published_at, a.version, a.body FROM articles a JOIN users u ON u.id = a.author_id WHERE a.id = ?"
TAG_ID="SELECT id FROM tags WHERE name = ?"
PAGE="SELECT a.id, a.slug, a.title, a.summary, a.status, a.tag_list, a.author_id, u.username AS author_username, a.created_at, a.updated_at, a.published_at, a.version FROM (SELECT f.article_id AS id, f.created_at AS sort_key FROM feed_entries f WHERE f.feed_kind = ? AND f.feed_id = ? AND f.status = ? ORDER BY f.created_at DESC, f.article_id DESC LIMIT ? OFFSET ?) p JOIN articles a ON a.id = p.id JOIN users u ON u.id = a.author_id ORDER BY p.sort_key DESC, p.id DESC"
KEPT_COUNT="SELECT articles FROM feed_counts WHERE feed_kind = ? AND feed_id = ? AND status = ?"
CURSOR_KEYS="SELECT status, author_id, created_at, updated_at, COALESCE(published_at, 0), title FROM articles WHERE id = ?"
SEEK_PAGE="SELECT a.id, a.slug, a.title, a.summary, a.status, a.tag_list, a.author_id, u.username AS author_username, a.created_at, a.updated_at, a.published_at, a.version FROM (SELECT f.article_id AS id, f.created_at AS sort_key FROM feed_entries f WHERE f.feed_kind = ? AND f.feed_id = ? AND f.status = ? AND f.created_at <= ? AND (f.created_at < ? OR f.article_id < ?) ORDER BY f.created_at DESC, f.article_id DESC LIMIT ? OFFSET ?) p JOIN articles a ON a.id = p.id JOIN users u ON u.id = a.author_id ORDER BY p.sort_key DESC, p.id DESC"

prepare() {
    scripts/services.sh >/dev/null
    command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
    if [ "$MODE" = profile ]; then
        command -v valgrind >/dev/null ||
            { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
    fi
    log "building feedgate (release)"
    cargo build --release --quiet --bin feedgate
    BIN=${FEEDGATE_BIN:-$(cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/release/feedgate}
    [ "$MODE" = run ] || BIN=${1:-$BIN}

    export DATABASE_URL=mysql://root@127.0.0.1:3306/$DB
    export FEEDGATE_JWT_SECRET=bench-only-key-0123456789abcdef0123456789
    # Every request a miss: no L1 (moka keeps nothing at 0 bytes), no Redis.
    unset REDIS_URL
    export FEEDGATE_CACHE__L1_MAX_BYTES=0 FEEDGATE_DATABASE__MAX_CONNECTIONS=$CONNECTIONS
    export FEEDGATE_LISTEN=127.0.0.1:$PORT RUST_LOG=warn
    # wrk is one client address standing in for many.
    export FEEDGATE_RATE_LIMIT__READ__LIMIT=1000000000 FEEDGATE_RATE_LIMIT__READ__WINDOW_SECS=1

    if ! mysql -uroot -e "USE $DB" 2>/dev/null; then
        mysql -uroot -e "CREATE DATABASE $DB"
        log "seeding $ARTICLES articles into MariaDB"
        "$BIN" seed --articles "$ARTICLES" >&2
    fi
    # Anonymous readers see published articles only; a fixed draw, so that
    # runs of this script read the same ids.
    mysql -uroot -N "$DB" -e "SELECT id, created_at FROM articles WHERE status = 'published'" |
        shuf -n "$IDS" --random-source=<(yes) >"$TMP/ids"
    mysql -uroot -N "$DB" -e "SELECT name, id FROM tags ORDER BY name" >"$TMP/tags"
    log "$(wc -l <"$TMP/ids") ids drawn from the published articles; $(wc -l <"$TMP/tags") tags"

    cut -f1 "$TMP/ids" | sed 's|^|/api/v1/articles/|' >"$TMP/detail.paths"
    cut -f1 "$TMP/tags" | sed 's|^|/api/v1/articles?tag=|' >"$TMP/tag.paths"
    cut -f1 "$TMP/ids" | sed 's|^|/api/v1/articles?after=|' >"$TMP/cursor.paths"
}

# One request's statements per line, values filled in, in the order of
# the paths file: statements FILE TEMPLATE... (each value row of FILE fills
# the templates' `?` in turn; `@n` in a value row is its n-th column).
statements() {
    python3 - "$@" <<'PY'
import sys
rows, templates = sys.argv[1], sys.argv[2:]
def literal(value):
    return value if value.lstrip("-").isdigit() else "'" + value.replace("'", "''") + "'"
for row in open(rows):
    values = row.rstrip("\n").split("\t")
    out = []
    for template in templates:
        text, args = template.split("|")
        parts = text.split("?")
        fills = [values[int(a[1:]) - 1] if a.startswith("@") else a for a in args.split(",")]
        assert len(fills) == len(parts) - 1, (text, fills)
        out.append("".join(p + (literal(f) if i < len(fills) else "")
                           for i, (p, f) in enumerate(zip(parts, fills + [""]))))
    print("; ".join(out) + ";")
PY
}

write_statements() {
    statements "$TMP/ids" "$FIND_ARTICLE|@1" >"$TMP/sql/detail"
    statements "$TMP/tags" "$TAG_ID|@1" "$PAGE|2,@2,published,21,0" "$KEPT_COUNT|2,@2,published" \
        >"$TMP/sql/tag"
    statements "$TMP/ids" "$CURSOR_KEYS|@1" "$SEEK_PAGE|0,0,published,@2,@2,@1,21,0" \
        "$KEPT_COUNT|0,0,published" >"$TMP/sql/cursor"
    local key k
    for key in detail tag cursor; do
        for k in $(seq "$CONNECTIONS"); do
            shuf --random-source=<(yes "$key$k") "$TMP/sql/$key" >"$TMP/sql/$key.$k"
        done
    done
}
declare -A PER_REQUEST=([detail]=1 [tag]=3 [cursor]=3)

# feedgate's statements for one request of each scenario, from sqlx's log,
# must be the templates above.
check_statements() {
    local log=$TMP/statements.log
    FEEDGATE_LISTEN=127.0.0.1:$PORT RUST_LOG=warn,sqlx::query=debug "$BIN" serve >"$log" 2>&1 &
    SERVER_PID=$!
    wait_for_server
    local key path expected got before
    declare -A EXPECTED=(
        [detail]="$FIND_ARTICLE"
        [tag]="$TAG_ID|$PAGE|$KEPT_COUNT"
        [cursor]="$CURSOR_KEYS|$SEEK_PAGE|$KEPT_COUNT"
    )
    for key in detail tag cursor; do
        path=$(head -1 "$TMP/$key.paths")
        before=$(wc -l <"$log")
        curl -sf -o /dev/null "127.0.0.1:$PORT$path"
        tail -n +"$((before + 1))" "$log" >"$log.$key"
        got=$(python3 - "$log.$key" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
found = [" ".join(m.replace("\\n", " ").split())
         for m in re.findall(r'db\.statement="(.*?)(?<!\\)"', text)]
print("|".join(found))
PY
)
        expected=${EXPECTED[$key]}
        if [ "$got" != "$expected" ]; then
            echo "misses: $key runs other statements than this script's:" >&2
            echo "  feedgate: $got" >&2
            echo "  script:   $expected" >&2
            exit 1
        fi
    done
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
    log "the statements match what feedgate runs"
}

wait_for_server() {
    for _ in $(seq 300); do
        curl -sf -o /dev/null "127.0.0.1:$PORT/healthz" && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "misses: feedgate did not start" >&2
    return 1
}

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
MARIADB_PID=$(pgrep -x mariadbd | head -1 || true)

# Global MariaDB counters: CPU ticks of mariadbd, buffer pool reads from
# disk, statements and other commands (pings).
db_counters() {
    local ticks=0
    [ -z "$MARIADB_PID" ] || ticks=$(cpu_ticks "$MARIADB_PID")
    mysql -uroot -N -e "SHOW GLOBAL STATUS WHERE Variable_name IN
        ('Innodb_buffer_pool_reads', 'Com_select', 'Com_admin_commands')" |
        awk -v ticks="$ticks" '{ v[$1] = $2 } END {
            print ticks, v["Innodb_buffer_pool_reads"], v["Com_select"], v["Com_admin_commands"] }'
}

# costs BEFORE AFTER REQUESTS: "mariadb_cpu_us pool_reads selects pings"
# per request.
costs() {
    echo "$1 $2 $3" | awk -v hz="$(getconf CLK_TCK)" '{
        n = $9
        printf "%.1f %.2f %.2f %.2f", 1e6 * ($5 - $1) / hz / n, ($6 - $2) / n, ($7 - $3) / n, ($8 - $4) / n }'
}

# fg_run KEY PATHS [wrk options...]: one feedgate run; appends
# "rate p50_ms p99_ms errors server_cpu_% mariadb_cpu_us pool_reads selects pings".
fg_run() {
    local key=$1 paths=$2 start wall ticks before after
    shift 2
    cat bench/wrk_report.lua bench/random_paths.lua >"$TMP/run.lua"
    # Warm the connections and the pool.
    taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d1s -s "$TMP/run.lua" "$@" "http://127.0.0.1:$PORT/" \
        -- "$paths" >/dev/null
    before=$(db_counters)
    ticks=$(cpu_ticks "$SERVER_PID")
    start=$(date +%s%N)
    taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$TMP/run.lua" "$@" \
        "http://127.0.0.1:$PORT/" -- "$paths" >"$TMP/last.out"
    wall=$(($(date +%s%N) - start))
    ticks=$(($(cpu_ticks "$SERVER_PID") - ticks))
    after=$(db_counters)
    local report requests
    report=$(awk '$1 == "HITS-REPORT" { print $2, $3, $4, $5, $6 + $7 + $8 + $9 + $10 }' "$TMP/last.out")
    [ -n "$report" ] || { cat "$TMP/last.out" >&2; return 1; }
    requests=${report%% *}
    echo "$report $ticks $wall $(costs "$before" "$after" "$requests")" | awk -v hz="$(getconf CLK_TCK)" '{
        printf "%.0f %.2f %.2f %d %.0f %s %s %s %s\n", $1 / $2 * 1e6, $3 / 1000, $4 / 1000, $5,
            100 * $6 / hz / ($7 / 1e9), $8, $9, $10, $11 }' >>"$RESULTS/$key.feedgate"
    printf '   %-12s feedgate  %s\n' "$key" "$(tail -1 "$RESULTS/$key.feedgate")" >&2
}

declare -A RATE=()   # last database rate per scenario and mode, to size runs

# slap_run KEY MODE REQUESTS: runs the database side; prints its rate in
# requests (not statements) per second: for own order, the sum of each
# client's own rate.
slap_run() {
    local key=$1 mode=$2 requests=$3 per=${PER_REQUEST[$1]} k
    if [ "$mode" = slap ]; then
        "${SLAP[@]}" --query="$TMP/sql/$key" --concurrency="$CONNECTIONS" \
            --number-of-queries=$((requests * per)) >"$TMP/slap.1"
    else
        for k in $(seq "$CONNECTIONS"); do
            "${SLAP[@]}" --query="$TMP/sql/$key.$k" --concurrency=1 \
                --number-of-queries=$((requests * per / CONNECTIONS)) >"$TMP/slap.$k" &
        done
        wait
    fi
    cat "$TMP"/slap.* | awk -v per="$per" '
        /Average number of seconds/ { seconds = $(NF - 1) }
        /Number of clients/ { clients = $NF }
        /queries per client/ { rate += $NF * clients / per / seconds }
        END { printf "%.0f\n", rate }'
    rm -f "$TMP"/slap.*
}

# db_run KEY MODE: one database run of about DURATION seconds; appends
# "rate mariadb_cpu_us pool_reads selects pings" per request.
db_run() {
    local key=$1 mode=$2 before after rate requests
    if [ -z "${RATE[$key.$mode]:-}" ]; then
        # Warm-up, which also sizes the first measured run.
        RATE[$key.$mode]=$(slap_run "$key" "$mode" $((CONNECTIONS * 200)))
    fi
    requests=$((RATE[$key.$mode] * DURATION))
    before=$(db_counters)
    rate=$(slap_run "$key" "$mode" "$requests")
    after=$(db_counters)
    RATE[$key.$mode]=$rate
    echo "$rate $(costs "$before" "$after" "$requests")" >>"$RESULTS/$key.$mode"
    printf '   %-12s %-9s %s\n' "$key" "$mode" "$(tail -1 "$RESULTS/$key.$mode")" >&2
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
column_median() { awk -v c="$2" '{ print $c }' "$1" | median; }
# Median over rounds of feedgate's rate / the database's in the same round.
ratio_median() {
    paste "$1" "$2" | awk -v c="$3" '{ print $1 / $c }' | median
}

SCENARIOS=(detail detail_gzip tag cursor)
declare -A LABEL=([detail]="detail" [detail_gzip]="detail, gzip" [tag]="tag, page 1"
    [cursor]="cursor page")
declare -A STATEMENTS_OF=([detail]=detail [detail_gzip]=detail [tag]=tag [cursor]=cursor)

report() {
    local key db fg
    echo
    echo "\`${COMMAND}\`"
    echo
    echo "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')):" \
        "$(mysql -uroot -N "$DB" -e 'SELECT COUNT(*) FROM articles') articles, $(wc -l <"$TMP/ids") ids;" \
        "$CONNECTIONS connections and clients, ${DURATION}s per run, medians of $ROUNDS rounds;" \
        "MariaDB buffer pool $(($(mysql -uroot -N -e 'SELECT @@innodb_buffer_pool_size') / 1048576)) MB."
    echo
    echo "| miss | feedgate req/s | database req/s, slap | ratio | database req/s, own order | ratio | feedgate p50 / p99 ms | errors |"
    echo "|---|--:|--:|--:|--:|--:|--:|--:|"
    for key in "${SCENARIOS[@]}"; do
        db=${STATEMENTS_OF[$key]} fg=$RESULTS/$key.feedgate
        printf '| %s | %.0f | %.0f | %.2f | %.0f | %.2f | %.2f / %.2f | %s |\n' "${LABEL[$key]}" \
            "$(column_median "$fg" 1)" "$(column_median "$RESULTS/$db.slap" 1)" \
            "$(ratio_median "$fg" "$RESULTS/$db.slap" 10)" \
            "$(column_median "$RESULTS/$db.own" 1)" "$(ratio_median "$fg" "$RESULTS/$db.own" 10)" \
            "$(column_median "$fg" 2)" "$(column_median "$fg" 3)" "$(awk '{ n += $4 } END { print n }' "$fg")"
    done
    echo
    echo "Per request, medians (MariaDB's counters are global: other clients of the server add to them):"
    echo
    echo "| miss | feedgate CPU % | MariaDB CPU µs: feedgate / slap / own order | buffer pool reads from disk | SELECTs | other commands (pings) |"
    echo "|---|--:|--:|--:|--:|--:|"
    for key in "${SCENARIOS[@]}"; do
        db=${STATEMENTS_OF[$key]} fg=$RESULTS/$key.feedgate
        printf '| %s | %.0f | %s / %s / %s | %s / %s / %s | %s / %s / %s | %s / %s / %s |\n' \
            "${LABEL[$key]}" "$(column_median "$fg" 5)" \
            "$(column_median "$fg" 6)" "$(column_median "$RESULTS/$db.slap" 2)" "$(column_median "$RESULTS/$db.own" 2)" \
            "$(column_median "$fg" 7)" "$(column_median "$RESULTS/$db.slap" 3)" "$(column_median "$RESULTS/$db.own" 3)" \
            "$(column_median "$fg" 8)" "$(column_median "$RESULTS/$db.slap" 4)" "$(column_median "$RESULTS/$db.own" 4)" \
            "$(column_median "$fg" 9)" "$(column_median "$RESULTS/$db.slap" 5)" "$(column_median "$RESULTS/$db.own" 5)"
    done
    echo
    echo "Ratio: median over rounds of feedgate / the database in the same round. Per-request"
    echo "columns read feedgate / slap / own order. feedgate CPU: of its core (100% is saturated)."
}

# profile: instructions per miss under callgrind.
PROFILE_N1=200 PROFILE_N2=600
profile() {
    local key coding paths n name
    command -v callgrind_annotate >/dev/null
    log "instructions per miss (callgrind), $BIN"
    for key in detail detail_gzip detail_br tag cursor; do
        case $key in
            detail_gzip) paths=$TMP/detail.paths coding=gzip ;;
            detail_br) paths=$TMP/detail.paths coding=br ;;
            *) paths=$TMP/$key.paths coding=identity ;;
        esac
        for n in $PROFILE_N1 $PROFILE_N2; do
            name=$TMP/$key.$n
            TOKIO_WORKER_THREADS=1 valgrind --tool=callgrind --callgrind-out-file="$name" \
                "$BIN" serve >/dev/null 2>&1 &
            SERVER_PID=$!
            python3 - "$PORT" "$n" "$paths" "$coding" <<'PY'
import http.client, sys, time
port, n, paths, coding = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
paths = [line.strip() for line in open(paths)]
headers = {"Accept-Encoding": coding}
for _ in range(600):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port)
        c.request("GET", "/healthz"); c.getresponse().read(); break
    except OSError:
        time.sleep(0.2)
for i in range(n):
    # Every request a different resource (the paths are a random draw).
    c.request("GET", paths[i % len(paths)], headers=headers); r = c.getresponse(); r.read()
    assert r.status == 200, r.status
    assert (r.getheader("Content-Encoding") or "identity") in (coding, "identity"), r.getheader("Content-Encoding")
PY
            kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
            SERVER_PID=
        done
        echo
        echo "== $key ($coding): GET $(head -1 "$paths")..."
        python3 bench/miss_profile.py "$TMP/$key.$PROFILE_N1" "$TMP/$key.$PROFILE_N2" \
            $((PROFILE_N2 - PROFILE_N1))
    done
}

# redis: Redis memory per stored entry, in a Redis of its own.
REDIS_PORT=16391
redis_memory() {
    local entries=${REDIS_ENTRIES:-2000} coding used before
    mkdir -p "$TMP/redis"
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$TMP/redis" --save "" \
        --appendonly no >/dev/null &
    REDIS_PID=$!
    for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
    # A patient Redis timeout: a slow reply on a busy machine would skip a fill.
    REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0 FEEDGATE_CACHE__L1_MAX_BYTES=268435456 \
        FEEDGATE_CACHE__REDIS_TIMEOUT_MS=2000 "$BIN" serve >/dev/null 2>&1 &
    SERVER_PID=$!
    wait_for_server
    # Fills go to Redis once the invalidation channel is up.
    for _ in $(seq 100); do
        curl -s "127.0.0.1:$PORT/readyz" | grep -q '"redis","status":"ok"' && break
        sleep 0.1
    done
    used() { redis-cli -p "$REDIS_PORT" info memory | awk -F: '/^used_memory:/ { print $2 + 0 }'; }
    before=$(used)
    head -n "$entries" "$TMP/detail.paths" | cat - "$TMP/tag.paths" | sed "s|^|http://127.0.0.1:$PORT|" \
        >"$TMP/urls"
    sed 's|.*|url = "&"\noutput = /dev/null|' "$TMP/urls" >"$TMP/fill.curl"
    for coding in identity gzip br; do
        curl -s --no-progress-meter --parallel --parallel-max 8 -H "Accept-Encoding: $coding" \
            -K "$TMP/fill.curl"
    done
    used=$(($(used) - before))
    echo "\`${COMMAND}\`: $BIN"
    echo "$(redis-cli -p "$REDIS_PORT" dbsize) keys ($(curl -s "127.0.0.1:$PORT/metrics" |
        awk '/^feedgate_cache_fills_total/ { n += $NF } END { print n }') fills); $used bytes of used_memory for" \
        "$((entries + $(wc -l <"$TMP/tag.paths"))) responses: $((used / (entries + $(wc -l <"$TMP/tag.paths")))) bytes each"
}

COMMAND="$(env | grep -E '^(ARTICLES|KEEP_DB|IDS|CONNECTIONS|REDIS_ENTRIES|FEEDGATE_BIN)=' | sort | tr '\n' ' ')bench/misses.sh $*"
[ "$MODE" = run ] || COMMAND="$(env | grep -E '^(ARTICLES|KEEP_DB|REDIS_ENTRIES|FEEDGATE_BIN)=' | sort | tr '\n' ' ')bench/misses.sh $MODE $*"
prepare "$@"
if [ "$MODE" = profile ]; then
    profile
    exit 0
elif [ "$MODE" = redis ]; then
    redis_memory
    exit 0
fi
write_statements
check_statements

log "starting feedgate: L1 off, no Redis, pool of $CONNECTIONS"
taskset -c 0 "$BIN" serve >/dev/null 2>&1 &
SERVER_PID=$!
wait_for_server

log "measuring: $ROUNDS rounds of ${DURATION}s runs, feedgate then the database"
for ROUND in $(seq "$ROUNDS"); do
    fg_run detail "$TMP/detail.paths"
    db_run detail slap
    db_run detail own
    fg_run detail_gzip "$TMP/detail.paths" -H 'Accept-Encoding: gzip'
    fg_run tag "$TMP/tag.paths"
    db_run tag slap
    db_run tag own
    fg_run cursor "$TMP/cursor.paths"
    db_run cursor slap
    db_run cursor own
done
report
