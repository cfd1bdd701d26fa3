#!/usr/bin/env bash
# A build system's side of a live build dashboard (docs/api.md, "Walk-through").
#
# Publishes one build's events into a ws-chat room through the server API:
# each message's text is a small JSON document, {"build":123,"status":"running"},
# that a dashboard page parses. Every event carries an idempotencyKey
# (build-<n>-<status>), so a retry after a timeout or a 503 never shows twice.
#
#   WSCHAT_API_KEY=<plain key> examples/build-events.sh [BUILD_NUMBER]
#
# Environment:
#   WSCHAT_API_KEY       a key with scope "publish" (or WSCHAT_API_KEY_FILE: a file holding it)
#   WSCHAT_API_URL       the admin listener, default http://127.0.0.1:8081
#   WSCHAT_ROOM          default dash-builds (a delivery = "latest" namespace: docs/rooms.md)
#   WSCHAT_STEP_SECONDS  pause between events, default 2
#   WSCHAT_RESULT        the last status: passed (default) or failed
#
# Needs bash and curl. The key goes to curl on its standard input (curl -K -),
# never on its command line, where `ps` would show it to every user.
set -euo pipefail

api=${WSCHAT_API_URL:-http://127.0.0.1:8081}
room=${WSCHAT_ROOM:-dash-builds}
step=${WSCHAT_STEP_SECONDS:-2}
result=${WSCHAT_RESULT:-passed}
build=${1:-$(( $(date +%s) % 100000 ))}

if [ -z "${WSCHAT_API_KEY:-}" ] && [ -n "${WSCHAT_API_KEY_FILE:-}" ]; then
  WSCHAT_API_KEY=$(<"$WSCHAT_API_KEY_FILE")
fi
[ -n "${WSCHAT_API_KEY:-}" ] || { echo "build-events: set WSCHAT_API_KEY (a key with scope publish)" >&2; exit 2; }
case $build in ''|*[!0-9]*) echo "build-events: BUILD_NUMBER must be digits" >&2; exit 2 ;; esac
case $result in passed|failed) ;; *) echo "build-events: WSCHAT_RESULT is passed or failed" >&2; exit 2 ;; esac

# POST /api/v1/rooms/<room>/messages with body $1. Prints the answer's body;
# retries transport errors and 5xx (same body, same idempotencyKey) with a
# growing pause; gives up on 4xx, which a retry cannot fix.
publish() {
  local body=$1 attempt status answer
  answer=$(mktemp)
  for attempt in 1 2 3 4 5; do
    status=$(curl -sS -o "$answer" -w '%{http_code}' --max-time 10 -K - \
      -X POST "$api/api/v1/rooms/$room/messages" \
      -H 'Content-Type: application/json' --data-binary "$body" \
      <<<"header = \"Authorization: Bearer ${WSCHAT_API_KEY}\"") || status=000
    case $status in
      200|201)
        # 201: published; 200: the same idempotencyKey was published before.
        echo "$status $(<"$answer")"
        rm -f "$answer"
        return 0 ;;
      4??)
        echo "build-events: HTTP $status $(<"$answer")" >&2
        rm -f "$answer"
        return 1 ;;
    esac
    echo "build-events: HTTP $status, retry $attempt in ${attempt}s" >&2
    sleep "$attempt"
  done
  rm -f "$answer"
  return 1
}

for status in queued running testing "$result"; do
  # The text is JSON inside a JSON string: its quotes are escaped.
  event="{\\\"build\\\":$build,\\\"status\\\":\\\"$status\\\"}"
  body="{\"text\":\"$event\",\"from\":\"build-bot\",\"idempotencyKey\":\"build-$build-$status\"}"
  printf 'build %s %-8s ' "$build" "$status"
  publish "$body"
  [ "$status" = "$result" ] || sleep "$step"
done
