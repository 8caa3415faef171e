#!/usr/bin/env bash
# Fuzzes the API from its own OpenAPI document with schemathesis: every
# operation, generated valid and invalid inputs, checked for server errors
# and for answers that the document does not describe (statuses, headers,
# content types, bodies).
#
#   scripts/fuzz.sh [schemathesis options...]      e.g. scripts/fuzz.sh --max-examples 50
#
# With FEEDGATE_FUZZ_URL=http://host:port it fuzzes that running instance
# (with FEEDGATE_FUZZ_TOKEN as its bearer token, if given). Otherwise it
# builds feedgate, starts it on a throwaway SQLite file with an admin user,
# signs in for a token, and stops it afterwards. Rate limits are off on the
# instance it starts, so the fuzzer reaches the handlers instead of 429s.
# Installs schemathesis with pip if it is missing, for FEEDGATE_FUZZ_PYTHON
# (default python3; CPython before 3.11.8 and 3.12.2 can crash inside
# hypothesis with "AST constructor recursion depth mismatch", so prefer a
# newer one). Exits non-zero if any check failed.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${FEEDGATE_FUZZ_PYTHON:-python3}
"$PY" -c 'import schemathesis' 2>/dev/null || "$PY" -m pip install --quiet schemathesis

URL=${FEEDGATE_FUZZ_URL:-}
TOKEN=${FEEDGATE_FUZZ_TOKEN:-}
if [[ -z $URL ]]; then
    cargo build --quiet --bin feedgate
    BIN=${CARGO_TARGET_DIR:-target}/debug/feedgate
    WORK=$(mktemp -d)
    PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    export DATABASE_URL=sqlite://$WORK/fuzz.db FEEDGATE_LISTEN=127.0.0.1:$PORT RUST_LOG=error
    export FEEDGATE_JWT_SECRET=fuzz-only-key-0123456789abcdef0123456789
    export FEEDGATE_RATE_LIMIT__ENABLED=false
    "$BIN" user create --username fuzzer --password 'fuzzing passphrase' --role admin >/dev/null
    "$BIN" serve >"$WORK/server.log" 2>&1 & SERVER_PID=$!
    trap 'kill $SERVER_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
    URL=http://127.0.0.1:$PORT
    for _ in $(seq 100); do curl -sf "$URL/healthz" >/dev/null && break; sleep 0.1; done
    TOKEN=$(curl -sf "$URL/api/v1/tokens" -H 'content-type: application/json' \
        -d '{"grant_type":"password","username":"fuzzer","password":"fuzzing passphrase"}' \
        | python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')
fi

AUTH=()
[[ -n $TOKEN ]] && AUTH=(--header "Authorization: Bearer $TOKEN")
"$PY" -m schemathesis.cli --config-file scripts/schemathesis.toml run "$URL/openapi.json" --url "$URL" "${AUTH[@]}" --workers 2 "$@"
