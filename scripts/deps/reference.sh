#!/usr/bin/env bash
# The reference chat, optional and not part of ws-chat: when REFERENCE_DIR
# names a copy of it (relative paths are from the repository root), copies
# its package.json, server.js, index.html and smoke-client.mjs unchanged into
# target/reference, installs their `ws` there, and records in
# target/reference/.prepared-from which copy it was. scripts/reference-ready.sh
# accepts target/reference only with that record. Without REFERENCE_DIR it
# only says so. Run by scripts/install-deps.sh; fails loudly.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ -z "${REFERENCE_DIR:-}" ]; then
  echo "reference chat: not requested (REFERENCE_DIR is unset); the reference check, 'loadtest/k6/run.sh reference' and the benchmark's reference server will not run"
  exit 0
fi
src=$(realpath -e -- "$REFERENCE_DIR" 2>/dev/null) && [ -d "$src" ] || {
  echo "REFERENCE_DIR=$REFERENCE_DIR is not a directory (a relative path is taken from the repository root, $PWD)" >&2; exit 1; }
files=(package.json server.js index.html smoke-client.mjs)
for f in "${files[@]}"; do
  [ -f "$src/$f" ] || { echo "REFERENCE_DIR=$REFERENCE_DIR has no $f: it must be a copy of the reference chat" >&2; exit 1; }
done

dest=target/reference
rm -f "$dest/.prepared-from"
mkdir -p "$dest"
for f in "${files[@]}"; do cp -- "$src/$f" "$dest/$f"; done
command -v npm >/dev/null || { echo "npm is missing (scripts/install-deps.sh installs it)" >&2; exit 1; }
(cd "$dest" && npm install --no-audit --no-fund --silent)
[ -f "$dest/node_modules/ws/package.json" ] || { echo "npm install did not install ws in $dest" >&2; exit 1; }
printf '%s\n' "$src" >"$dest/.prepared-from"
echo "reference chat: $src copied to $dest (ws $(node -p 'require("./'"$dest"'/node_modules/ws/package.json").version'))"
