#!/usr/bin/env bash
# Fan-out on one process with the memory broker versus two processes on one
# redis-server, same load, one run each (sequentially: they must not compete
# for the cores). Needs release builds of ws-chat and loadgen.
# Usage: loadtest/redis-compare.sh [extra loadgen args, e.g. --duration 20]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release
OUT=${OUT:-target/redis-compare}
mkdir -p "$OUT"
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
LOAD=(--mode fanout --rooms 1 --members 200 --publishers 40 --rate 1.5 --warmup 3 --duration 15 "$@")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
serve() { # port admin_port [env...]
  local p=$1 a=$2; shift 2
  env CHAT__SERVER__PORT="$p" CHAT__SERVER__ADMIN_PORT="$a" CHAT__SERVER__HOST=127.0.0.1 \
    CHAT__SERVER__ADMIN_HOST=127.0.0.1 CHAT_TOKEN=dev-token ALLOWED_ORIGINS=http://localhost:8080 \
    CHAT__TELEMETRY__LOG_FORMAT=json "$@" "$BIN/ws-chat" >"$OUT/ws-$p.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$a/readyz" >/dev/null && return; sleep 0.1; done
  echo "ws-chat on $p not ready" >&2; exit 1
}

# 1. memory, one process
P=$(port); A=$(port); serve "$P" "$A"; MEM=${pids[-1]}
"$BIN/loadgen" "${LOAD[@]}" --url "ws://127.0.0.1:$P/chat" --label memory-1 \
  --server-pid "$MEM" --json "$OUT/memory.json" >/dev/null
kill "$MEM"; wait "$MEM" 2>/dev/null || true

# 2. redis, two processes (CPU: both replicas + redis-server)
RP=$(port); D=$(mktemp -d)
redis-server --port "$RP" --bind 127.0.0.1 --save "" --appendonly no --dir "$D" >/dev/null 2>&1 &
RPID=$!; pids+=($RPID); sleep 0.5
P1=$(port); A1=$(port); P2=$(port); A2=$(port)
R=(CHAT__BROKER__KIND=redis CHAT__BROKER__REDIS_URL=redis://127.0.0.1:$RP)
serve "$P1" "$A1" "${R[@]}"; W1=${pids[-1]}
serve "$P2" "$A2" "${R[@]}"; W2=${pids[-1]}
"$BIN/loadgen" "${LOAD[@]}" --url "ws://127.0.0.1:$P1/chat" --also-url "ws://127.0.0.1:$P2/chat" \
  --label redis-2 --server-pid "$W1" --extra-pid "$W2" --extra-pid "$RPID" \
  --json "$OUT/redis.json" >/dev/null

python3 - "$OUT" <<'PY'
import json, sys
for name in ("memory", "redis"):
    r = json.load(open(f"{sys.argv[1]}/{name}.json"))
    l = r["latency_ms"]
    print(f"{name:7} delivered {r['delivered']}/{r['expected']}  p50 {l.get('p50_ms')} ms  "
          f"p99 {l.get('p99_ms')} ms  server CPU {r['server_cpu_us_per_delivery']} us/delivery  "
          f"({r['server_cpu_cores']} cores, loadgen {r['loadgen_cpu_cores']}, others {r['other_cpu_cores']})")
PY
