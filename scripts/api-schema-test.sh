#!/usr/bin/env bash
# Runs schemathesis with docs/api/openapi.yaml against the real server API:
# target/debug/ws-chat on free loopback ports.
#  1. With one API key holding every scope: generated, boundary and stateful
#     requests; no 5xx, statuses, content types, headers and bodies as
#     documented, 405 for other methods, every operation answers 2xx once.
#  2. The same server without the key: every answer a documented 401; with a
#     key holding only `read`: 403 for every operation needing another scope.
#  3. A server with no key configured: every answer a documented 404 api_off.
# Reproducible (fixed seed, no example database, no crash cache); every run
# always runs and any failure fails the script; a missing tool fails it, never
# skips. Reports and the servers' logs in target/api-schema/.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=target/venv-api
[ -x "$VENV/bin/schemathesis" ] || {
  echo "test-api: $VENV/bin/schemathesis is missing: run 'make deps' (or scripts/deps/api.sh)" >&2
  exit 1
}
SEED=${API_SCHEMA_SEED:-19}
EXAMPLES=${API_SCHEMA_EXAMPLES:-100}

cargo build --quiet --bin ws-chat
BIN=target/debug/ws-chat
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

WORK=$(mktemp -d)
REPORTS=target/api-schema
rm -rf "$REPORTS"
mkdir -p "$REPORTS"
PID=
stop_server() {
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
    kill -TERM "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
  fi
  PID=
}
trap 'stop_server; rm -rf "$WORK"' EXIT

# start_server NAME CONFIG: ws-chat with CONFIG on free ports; sets ADMIN
# and PID, logs to $REPORTS/NAME.log.
start_server() {
  local port
  port=$(free_port)
  ADMIN=$(free_port)
  while [ "$ADMIN" = "$port" ]; do ADMIN=$(free_port); done
  env -u CHAT_TOKEN -u CHAT_ENV -u PORT -u ALLOWED_ORIGINS -u RUST_LOG \
    CHAT__SERVER__HOST=127.0.0.1 CHAT__SERVER__ADMIN_HOST=127.0.0.1 \
    CHAT__SERVER__PORT="$port" CHAT__SERVER__ADMIN_PORT="$ADMIN" \
    CHAT__TELEMETRY__LOG_FORMAT=json CHAT__TELEMETRY__TRACES=off \
    "$BIN" --config "$2" >"$REPORTS/$1.log" 2>&1 &
  PID=$!
  for _ in $(seq 100); do
    "$BIN" healthcheck --url "http://127.0.0.1:$ADMIN/healthz" 2>/dev/null && return 0
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "test-api: ws-chat ($1) did not start:" >&2
  cat "$REPORTS/$1.log" >&2
  exit 1
}

# check_log NAME: the server survived and logged no error or panic.
status=0
check_log() {
  kill -0 "$PID" 2>/dev/null || { echo "test-api: ws-chat ($1) died during the run" >&2; status=1; }
  if grep -q '"level":"ERROR"\|panicked' "$REPORTS/$1.log"; then
    echo "test-api: ws-chat ($1) logged errors or panics:" >&2
    grep '"level":"ERROR"\|panicked' "$REPORTS/$1.log" | head -20 >&2
    status=1
  fi
}

# No crash cache (a run would replay the last run's failures first) and
# hypothesis's own files under target/, not in the work tree.
printf '[cache]\nenabled = false\n' >"$WORK/schemathesis.toml"
export HYPOTHESIS_STORAGE_DIRECTORY=$REPORTS/hypothesis
export SCHEMATHESIS_HOOKS=scripts/api-schema-hooks.py
ST=("$VENV/bin/schemathesis" --config-file "$WORK/schemathesis.toml")
CHECKS=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance
# run NAME ARGS...: one schemathesis run against the server started last.
run() {
  local name=$1
  shift
  "${ST[@]}" run docs/api/openapi.yaml --url "http://127.0.0.1:$ADMIN" \
    --seed "$SEED" --generation-database none \
    --workers 1 --request-timeout 10 --no-color \
    --report junit --report-junit-path "$REPORTS/$name.xml" "$@" ||
    { echo "test-api: FAILED: $name (each failure above has a curl line; report $REPORTS/$name.xml)" >&2; status=1; }
}

KEY=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
READ_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
cat >"$WORK/with-key.toml" <<TOML
[[api.keys]]
name = "schema-test"
scopes = ["publish", "moderate", "read"]
key = "$KEY"
[[api.keys]]
name = "schema-reader"
scopes = ["read"]
key = "$READ_KEY"
TOML
start_server with-key "$WORK/with-key.toml"

echo "test-api: schemathesis $("${ST[@]}" --version | sed 's/.*version //'), seed $SEED: with a key holding every scope, $EXAMPLES examples per operation"
run with-key --header "Authorization: Bearer $KEY" --max-examples "$EXAMPLES" \
  --phases examples,coverage,fuzzing,stateful \
  --checks "$CHECKS,unsupported_method,allow_header_conformance,every_operation_succeeds"

# No Authorization header, or a bearer key schemathesis makes up. Its warning
# that authentication failed is the point here, so warnings are off.
echo "test-api: without a key: every answer 401"
run without-key --max-examples 20 --warnings off --phases examples,coverage,fuzzing \
  --checks "$CHECKS,answers_401_without_key"
echo "test-api: with a key holding only read: 403 for the publish and moderate operations"
API_SCHEMA_SCOPES=read API_SCHEMA_KEY=$READ_KEY run read-only-key --header "Authorization: Bearer $READ_KEY" --max-examples 10 \
  --warnings off --phases examples,coverage,fuzzing --checks "$CHECKS,answers_403_without_scope"
check_log with-key
stop_server

printf '# no [[api.keys]]: the API is off\n' >"$WORK/api-off.toml"
start_server api-off "$WORK/api-off.toml"
echo "test-api: no key configured: every answer 404 api_off"
run api-off --header "Authorization: Bearer $KEY" --max-examples 10 --warnings off \
  --phases examples,coverage,fuzzing --checks "$CHECKS,answers_api_off"
check_log api-off
stop_server

[ "$status" -eq 0 ] || exit 1
echo "test-api: ok, 4 runs passed"
