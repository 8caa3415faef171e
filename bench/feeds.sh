#!/usr/bin/env bash
# Feeds at a million articles, on this machine's MariaDB as it is configured
# (its default 128 MB buffer pool here):
#   1. seeds ARTICLES articles into a fresh database and prints the time;
#   2. serves it with no cache tier, so every read reaches the database;
#   3. times every kind of read against its target (bench/feeds_probe.py).
#
#   bench/feeds.sh [ARTICLES] [REPEATS]     defaults: 1000000 20
#
# KEEP_DB=name reuses (or keeps) that database instead of a throwaway one.
set -euo pipefail
cd "$(dirname "$0")/.."
ARTICLES=${1:-1000000}
REPEATS=${2:-20}
PORT=18090
DB=${KEEP_DB:-feedgate_feeds_$RANDOM}

scripts/services.sh >/dev/null
cargo build --release --quiet --bin feedgate
export DATABASE_URL=mysql://root@127.0.0.1:3306/$DB
export FEEDGATE_JWT_SECRET=bench-only-key-0123456789abcdef0123456789
export FEEDGATE_LISTEN=127.0.0.1:$PORT FEEDGATE_CACHE__L1_MAX_BYTES=0 RUST_LOG=warn
unset REDIS_URL
cleanup() {
    kill "${SERVER_PID:-}" 2>/dev/null || true
    [ -n "${KEEP_DB:-}" ] || mysql -uroot -e "DROP DATABASE IF EXISTS $DB"
}
trap cleanup EXIT

if ! mysql -uroot -e "USE $DB" 2>/dev/null; then
    mysql -uroot -e "CREATE DATABASE $DB"
    echo "== seeding $ARTICLES articles into MariaDB"
    target/release/feedgate seed --articles "$ARTICLES"
fi

target/release/feedgate serve & SERVER_PID=$!
for _ in $(seq 100); do curl -sf "localhost:$PORT/healthz" >/dev/null && break; sleep 0.1; done

echo "== uncached reads (no cache tier: every read reaches MariaDB)"
python3 bench/feeds_probe.py "http://127.0.0.1:$PORT" "$DB" "$REPEATS"
