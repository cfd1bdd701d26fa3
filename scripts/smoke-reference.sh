#!/usr/bin/env bash
# Runs the reference Node smoke client, unchanged, against ws-chat started
# with no configuration at all. The client's URL is fixed to localhost:8080.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f target/reference/node_modules/ws/package.json ] || { echo "run scripts/install-deps.sh first" >&2; exit 1; }
cargo build --quiet --bin ws-chat
bin=target/debug/ws-chat
log=$(mktemp)
env -u PORT -u CHAT_TOKEN -u ALLOWED_ORIGINS "$bin" >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 100); do
  curl -fsS http://127.0.0.1:8081/readyz >/dev/null 2>&1 && break
  kill -0 $pid 2>/dev/null || { cat "$log"; echo "ws-chat exited early" >&2; exit 1; }
  sleep 0.1
done
if node target/reference/smoke-client.mjs; then
  echo "smoke: 1 passed, 0 failed"
else
  cat "$log"; echo "smoke: 0 passed, 1 failed"; exit 1
fi
