#!/usr/bin/env bash
# Runs the whole test suite against real MariaDB and Redis (started if need be).
# Extra arguments go to the test runner, e.g. `scripts/test.sh articles`.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/services.sh
# The OpenAPI tests check the document with the reference validator.
python3 -c 'import openapi_spec_validator' 2>/dev/null ||
    python3 -m pip install --quiet openapi-spec-validator

if cargo nextest --version >/dev/null 2>&1; then
    exec cargo nextest run --no-fail-fast "$@"
else
    exec cargo test --no-fail-fast "$@"
fi
