#!/usr/bin/env bash
# Runs the k6 scenarios, short versions, against a freshly started server
# (fanout, connect storm, soak, abuse; jwt.js and rooms.js, against ws-chat
# only)
# and stops it. Usage: loadtest/k6/run.sh [ws-chat|reference]
# (reference: the Node reference chat, which needs REFERENCE_DIR; see
# scripts/reference-ready.sh)
#
# ws-chat is started from $WS_CHAT_BIN (default target/release/ws-chat, else
# target/debug/ws-chat) on free ports. k6 cannot choose its source address, so
# every k6 client comes from 127.0.0.1: for these runs the per-IP connection
# and per-IP message limits are raised (env below). The per-connection limits
# (20 messages burst, 2/s) stay at their defaults: abuse.js checks them.
# ws-chat also gets an HS256 key (a fresh random secret in a temporary
# --config file) for jwt.js, which mints its tokens with the same secret.
set -euo pipefail
cd "$(dirname "$0")/../.."
target=${1:-ws-chat}
# The reference chat is not part of ws-chat: it runs only from a copy named by
# REFERENCE_DIR and prepared by `make deps` (scripts/reference-ready.sh).
if [ "$target" = reference ]; then
  scripts/reference-ready.sh || { echo "loadtest/k6/run.sh reference: no reference chat to run" >&2; exit 1; }
fi
command -v k6 >/dev/null || { echo "k6 is missing: run scripts/install-deps.sh" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
admin=$(free_port)
origin="http://localhost:$port"
log=$(mktemp)
config=$(mktemp)
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

case "$target" in
  ws-chat)
    bin=${WS_CHAT_BIN:-}
    if [ -z "$bin" ]; then
      for candidate in target/release/ws-chat target/debug/ws-chat; do
        [ -x "$candidate" ] && { bin=$candidate; break; }
      done
    fi
    [ -n "$bin" ] && [ -x "$bin" ] || { echo "no ws-chat binary: cargo build -p ws-chat, or set WS_CHAT_BIN" >&2; exit 1; }
    # For jwt.js only; never printed. 64 hex characters: HS256 wants >= 32 bytes.
    JWT_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
    export JWT_SECRET
    printf '[[auth.jwt.keys]]\nalg = "HS256"\nkid = "k6"\nsecret = "%s"\n' "$JWT_SECRET" >"$config"
    env -u PORT -u ALLOWED_ORIGINS \
      CHAT__SERVER__HOST=127.0.0.1 CHAT__SERVER__ADMIN_HOST=127.0.0.1 \
      CHAT__SERVER__PORT="$port" CHAT__SERVER__ADMIN_PORT="$admin" \
      CHAT_TOKEN=dev-token CHAT__AUTH__ALLOWED_ORIGINS="$origin" \
      CHAT__LIMITS__IP_MAX_CONNECTIONS=5000 CHAT__LIMITS__IP_CONNECT_BURST=5000 \
      CHAT__LIMITS__IP_CONNECT_REFILL=1ms CHAT__LIMITS__IP_MESSAGE_BURST=5000 \
      CHAT__LIMITS__IP_MESSAGE_REFILL=1ms CHAT__SERVER__IP_MAX_HTTP_CONNECTIONS=5000 \
      "$bin" --config "$config" >"$log" 2>&1 &
    ready="http://127.0.0.1:$admin/readyz"
    ;;
  reference)
    (cd target/reference && PORT=$port CHAT_TOKEN=dev-token ALLOWED_ORIGINS=$origin exec node server.js) >"$log" 2>&1 &
    ready="http://127.0.0.1:$port/healthz"
    ;;
  *) echo "usage: $0 [ws-chat|reference]" >&2; exit 2 ;;
esac
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -f "$log" "$config"' EXIT

for _ in $(seq 100); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$ready" 2>/dev/null)" = 200 ] && break
  kill -0 $pid 2>/dev/null || { cat "$log"; echo "$target exited early" >&2; exit 1; }
  sleep 0.1
done
[ "$(curl -s -o /dev/null -w '%{http_code}' "$ready")" = 200 ] || { cat "$log"; echo "$target not ready" >&2; exit 1; }
echo "== $target (pid $pid) on :$port"

export URL="ws://127.0.0.1:$port/chat" ORIGIN="$origin" TOKEN=dev-token
# This suite guards behaviour, not speed: it runs a debug build on a shared
# 2-core machine next to k6 itself, so latency thresholds are looser than the
# scripts' defaults (250/500 ms). Override with P95_MS / P99_MS.
export P95_MS=${P95_MS:-500} P99_MS=${P99_MS:-1000}
passed=0 failed=0
run() {
  local script=$1; shift
  echo "== k6 $script $*"
  if env "$@" k6 run --quiet --no-color "loadtest/k6/$script"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1)); echo "FAILED: $script" >&2
  fi
}
run fanout.js DURATION=10s ROOMS=4 MEMBERS=25 PUBLISHERS=4 RATE=1
run connect-storm.js CLIENTS=150 WINDOW=2s HOLD=3s ROOMS=4
run soak.js DURATION=12s ROOMS=2 MEMBERS=25 PUBLISHERS=3 RATE=1 CHURNERS=5
run abuse.js DURATION=8s
# Identified users need JWTs: ws-chat only (the reference has no JWTs).
if [ "$target" = ws-chat ]; then run jwt.js CLIENTS=20 SENDS=3 JWT_KID=k6; fi
# Several rooms per connection (version 2): ws-chat only.
if [ "$target" = ws-chat ]; then run rooms.js CLIENTS=20 ROOMS_PER_VU=8 POOL=16 SENDS=4; fi
kill -0 $pid 2>/dev/null || { cat "$log"; echo "$target died during the run" >&2; failed=$((failed + 1)); }
echo "loadtest: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
