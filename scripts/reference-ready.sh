#!/usr/bin/env bash
# Decides whether target/reference, the reference chat, may be used: only
# when REFERENCE_DIR names a copy of it and `make deps` copied that same,
# unchanged copy there (scripts/deps/reference.sh). Exits 0 if so; otherwise
# prints how to get there and exits 1. Used by scripts/smoke-reference.sh,
# loadtest/k6/run.sh and loadtest/bench.py.
set -euo pipefail
cd "$(dirname "$0")/.."

how="the reference chat is not part of ws-chat: set REFERENCE_DIR to a copy of it (the directory with its server.js, index.html, smoke-client.mjs and package.json; a relative path is taken from the repository root), then run 'make deps' with REFERENCE_DIR set"
[ -n "${REFERENCE_DIR:-}" ] || { echo "REFERENCE_DIR is unset: $how" >&2; exit 1; }
src=$(realpath -e -- "$REFERENCE_DIR" 2>/dev/null) && [ -d "$src" ] || {
  echo "REFERENCE_DIR=$REFERENCE_DIR is not a directory: $how" >&2; exit 1; }
again="run 'REFERENCE_DIR=$REFERENCE_DIR make deps'"
[ "$(cat target/reference/.prepared-from 2>/dev/null)" = "$src" ] || {
  echo "target/reference was not prepared from REFERENCE_DIR=$REFERENCE_DIR: $again" >&2; exit 1; }
[ -f target/reference/node_modules/ws/package.json ] || {
  echo "target/reference has no node_modules/ws: $again" >&2; exit 1; }
for f in package.json server.js index.html smoke-client.mjs; do
  cmp -s "$src/$f" "target/reference/$f" || {
    echo "target/reference/$f differs from $src/$f: $again" >&2; exit 1; }
done
