#!/usr/bin/env bash
# Runs schemathesis with docs/api/openapi.yaml against the real server API:
# target/debug/ws-chat on free loopback ports, one API key holding every
# scope. First with the key (generated, boundary and stateful requests; no
# 5xx, statuses, content types, headers and bodies as documented, every
# operation answers 2xx at least once), then without it (every answer a
# documented 401). Reproducible (fixed seed, no example database); fails,
# never skips, when a tool is missing. Reports in target/api-schema/.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=target/venv-api
ST=$VENV/bin/schemathesis
[ -x "$ST" ] || { echo "test-api: $ST is missing: run 'make deps' (or scripts/deps/api.sh)" >&2; exit 1; }
SEED=${API_SCHEMA_SEED:-19}
EXAMPLES=${API_SCHEMA_EXAMPLES:-30}

cargo build --quiet --bin ws-chat
BIN=target/debug/ws-chat
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
ADMIN=$(free_port)
while [ "$ADMIN" = "$PORT" ]; do ADMIN=$(free_port); done

WORK=$(mktemp -d)
REPORTS=target/api-schema
rm -rf "$REPORTS"
mkdir -p "$REPORTS"
PID=
cleanup() {
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
    kill -TERM "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
  fi
  [ -f "$WORK/server.log" ] && cp "$WORK/server.log" "$REPORTS/server.log"
  rm -rf "$WORK"
}
trap cleanup EXIT

KEY=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
cat >"$WORK/config.toml" <<TOML
[[api.keys]]
name = "schema-test"
scopes = ["publish", "moderate", "read"]
key = "$KEY"
TOML

env -u CHAT_TOKEN -u CHAT_ENV -u PORT -u ALLOWED_ORIGINS -u RUST_LOG \
  CHAT__SERVER__HOST=127.0.0.1 CHAT__SERVER__ADMIN_HOST=127.0.0.1 \
  CHAT__SERVER__PORT="$PORT" CHAT__SERVER__ADMIN_PORT="$ADMIN" \
  CHAT__TELEMETRY__LOG_FORMAT=json CHAT__TELEMETRY__TRACES=off \
  "$BIN" --config "$WORK/config.toml" >"$WORK/server.log" 2>&1 &
PID=$!

for _ in $(seq 100); do
  "$BIN" healthcheck --url "http://127.0.0.1:$ADMIN/healthz" 2>/dev/null && break
  kill -0 "$PID" 2>/dev/null || { echo "test-api: ws-chat exited:" >&2; cat "$WORK/server.log" >&2; exit 1; }
  sleep 0.1
done
"$BIN" healthcheck --url "http://127.0.0.1:$ADMIN/healthz" >/dev/null

# No crash cache (a run would replay the last run's failures first) and
# hypothesis's own files under target/, not in the work tree.
printf '[cache]\nenabled = false\n' >"$WORK/schemathesis.toml"
export HYPOTHESIS_STORAGE_DIRECTORY=$REPORTS/hypothesis
ST=("$ST" --config-file "$WORK/schemathesis.toml")
COMMON=(
  docs/api/openapi.yaml --url "http://127.0.0.1:$ADMIN"
  --seed "$SEED" --generation-database none
  --workers 1 --request-timeout 10 --no-color
)
CHECKS=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance
export SCHEMATHESIS_HOOKS=scripts/api-schema-hooks.py

# Both runs always run; either failing fails the target.
status=0
echo "test-api: schemathesis $("${ST[@]}" --version | sed 's/.*version //') with a key (all scopes), seed $SEED, $EXAMPLES examples per operation"
"${ST[@]}" run "${COMMON[@]}" \
  --header "Authorization: Bearer $KEY" \
  --max-examples "$EXAMPLES" \
  --phases examples,coverage,fuzzing,stateful \
  --checks "$CHECKS,unsupported_method,every_operation_succeeds" \
  --report junit --report-junit-path "$REPORTS/with-key.xml" ||
  { echo "test-api: FAILED with a key (reproduce: the curl lines above; report $REPORTS/with-key.xml)" >&2; status=1; }

# No Authorization header, or a bearer key schemathesis makes up: 401 (the
# warning that authentication failed is the point here, so warnings are off).
echo "test-api: schemathesis without a key: every answer 401"
"${ST[@]}" run "${COMMON[@]}" \
  --max-examples 10 --warnings off \
  --phases examples,coverage,fuzzing \
  --checks "$CHECKS,answers_401_without_key" \
  --report junit --report-junit-path "$REPORTS/without-key.xml" ||
  { echo "test-api: FAILED without a key (report $REPORTS/without-key.xml)" >&2; status=1; }

kill -0 "$PID" 2>/dev/null || { echo "test-api: ws-chat died during the run" >&2; exit 1; }
if grep -q '"level":"ERROR"\|panicked' "$WORK/server.log"; then
  echo "test-api: the server logged errors or panics:" >&2
  grep '"level":"ERROR"\|panicked' "$WORK/server.log" | head -20 >&2
  status=1
fi
[ "$status" -eq 0 ] || exit 1
echo "test-api: ok, both runs passed"
