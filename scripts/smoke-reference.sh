#!/usr/bin/env bash
# `make test-reference`: the check against the original reference chat,
# run only when REFERENCE_DIR names a copy of it (which `make deps` copied
# into target/reference; scripts/reference-ready.sh checks that):
#  1. the reference's smoke client, unchanged, against ws-chat started with
#     no configuration (the client's URL is fixed to localhost:8080);
#  2. this project's compatibility tests (tests/compat) against the
#     reference server itself, which shows they expect what it does.
# Without REFERENCE_DIR it says the check was not requested and succeeds;
# requested, anything missing or failing is a failure, never a skip.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${REFERENCE_DIR:-}" ]; then
  echo "test-reference: NOT RUN, not requested (REFERENCE_DIR is unset). The compatibility tests (test-compat) ran;"
  echo "  to also run the original reference smoke client, set REFERENCE_DIR to a copy of the reference chat."
  exit 0
fi
scripts/reference-ready.sh
cargo build --quiet --bin ws-chat

bin=target/debug/ws-chat
log=$(mktemp)
pid=
stop() { [ -z "$pid" ] || { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }; pid=; }
trap 'stop; rm -f "$log"' EXIT
# The ports must be free, or another server would answer in place of this
# one: wait up to a minute (another test run may be finishing), then fail.
for port in 8080 8081; do
  for i in $(seq 240); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || break
    [ "$i" -lt 240 ] || { echo "port $port is still in use; the smoke client needs ws-chat on its defaults" >&2; exit 1; }
    sleep 0.25
  done
done
# No configuration at all: none of ws-chat's settings from this environment.
no_config=()
for var in $(compgen -e); do
  case $var in CHAT_*|PORT|ALLOWED_ORIGINS) no_config+=(-u "$var") ;; esac
done
env "${no_config[@]}" "$bin" >"$log" 2>&1 &
pid=$!
for _ in $(seq 100); do
  curl -fsS http://127.0.0.1:8081/readyz >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { cat "$log"; echo "ws-chat exited early" >&2; exit 1; }
  sleep 0.1
done
kill -0 "$pid" 2>/dev/null || { cat "$log"; echo "ws-chat exited early" >&2; exit 1; }
echo "== the reference smoke client ($REFERENCE_DIR/smoke-client.mjs, unchanged) against ws-chat"
if node target/reference/smoke-client.mjs; then
  echo "reference smoke client against ws-chat: 1 passed, 0 failed"
else
  cat "$log"; echo "reference smoke client against ws-chat: 0 passed, 1 failed" >&2; exit 1
fi
stop

echo "== the compatibility tests (tests/compat) against the reference server"
COMPAT_SERVER=target/reference/server.js scripts/compat-test.sh reference
echo "test-reference: passed (reference chat from $REFERENCE_DIR)"
