#!/usr/bin/env bash
# Lints a live ws-chat's /metrics with `promtool check metrics` and checks
# that every metric the Grafana dashboard and the alert rules query is in
# it (a histogram as its _bucket, _sum and _count series). Starts the debug
# binary on free loopback ports and drives a little traffic first, so the
# counters have moved. Fails, never skips, when promtool is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v promtool >/dev/null || {
  echo "metrics-check: promtool is missing (Debian package prometheus: run 'make deps')" >&2
  exit 1
}
# The packaging venv has PyYAML for --rules; the dashboard alone needs only python3.
PY=target/venv-packaging/bin/python
[ -x "$PY" ] || PY=python3
QUERIED=(--rules charts/ws-chat/rules/ws-chat.rules.yaml)
"$PY" -c 'import yaml' 2>/dev/null || {
  echo "metrics-check: no PyYAML for $PY; run 'make deps' (the alert rules' metrics need it)" >&2
  exit 1
}

cargo build --quiet --bin ws-chat
BIN=target/debug/ws-chat
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
ADMIN=$(free_port)
while [ "$ADMIN" = "$PORT" ]; do ADMIN=$(free_port); done

WORK=$(mktemp -d)
PID=
cleanup() {
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
    kill -TERM "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

env -u CHAT_TOKEN -u CHAT_ENV -u PORT -u ALLOWED_ORIGINS -u RUST_LOG \
  CHAT__SERVER__HOST=127.0.0.1 CHAT__SERVER__ADMIN_HOST=127.0.0.1 \
  CHAT__SERVER__PORT="$PORT" CHAT__SERVER__ADMIN_PORT="$ADMIN" \
  CHAT__TELEMETRY__LOG_FORMAT=json CHAT__TELEMETRY__TRACES=off \
  "$BIN" >"$WORK/server.log" 2>&1 &
PID=$!

for _ in $(seq 100); do
  "$BIN" healthcheck --url "http://127.0.0.1:$ADMIN/healthz" 2>/dev/null && break
  kill -0 "$PID" 2>/dev/null || { echo "metrics-check: ws-chat exited:" >&2; cat "$WORK/server.log" >&2; exit 1; }
  sleep 0.1
done

# Traffic: accepted messages (the smoke client's echo) and a refused upgrade.
for room in a b c; do
  "$BIN" smoke --url "ws://127.0.0.1:$PORT/chat" --token dev-token \
    --origin "http://localhost:$PORT" --room "$room" --timeout 10 >/dev/null
done
if "$BIN" smoke --url "ws://127.0.0.1:$PORT/chat" --token not-the-token \
  --origin "http://localhost:$PORT" --timeout 5 >/dev/null 2>&1; then
  echo "metrics-check: a bad token was accepted" >&2
  exit 1
fi

python3 - "http://127.0.0.1:$ADMIN/metrics" >"$WORK/metrics" <<'PY'
import sys, urllib.request
sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())
PY

echo "metrics-check: promtool check metrics"
promtool check metrics <"$WORK/metrics"

"$PY" scripts/dashboard-metrics.py "${QUERIED[@]}" >"$WORK/queried"
# Series names present in the exposition (labels and values stripped).
sed -E '/^#/d; s/[{ ].*//' "$WORK/metrics" | sort -u >"$WORK/present"
missing=0
total=0
while read -r name; do
  total=$((total + 1))
  wanted=("$name")
  case "$name" in
    *_bucket) base=${name%_bucket}; wanted+=("${base}_sum" "${base}_count") ;;
  esac
  for series in "${wanted[@]}"; do
    if ! grep -qxF "$series" "$WORK/present"; then
      echo "metrics-check: queried by the dashboard or rules but not exported: $series" >&2
      missing=$((missing + 1))
    fi
  done
done <"$WORK/queried"
[ "$missing" -eq 0 ] || exit 1
echo "metrics-check: ok, $total queried metrics all exported, exposition lints clean"
