#!/usr/bin/env bash
# The benchmark's Bun peer (loadtest/peers/bun, server "bun" in
# loadtest/bench.py) runs on the Bun pinned in loadtest/peers/bun/package.json
# and its package-lock.json: the npm package `bun`, whose postinstall puts the
# platform's binary (@oven/bun-linux-x64, also from the npm registry) in
# place. Installed into target/bun with npm ci. Run by scripts/install-deps.sh
# and, when the benchmark's servers include bun, by `make bench`.
# Idempotent; fails loudly, never skips.
set -euo pipefail
cd "$(dirname "$0")/../.."

src=loadtest/peers/bun
dest=target/bun
bun=$dest/node_modules/.bin/bun
want=$(node -p 'require("./'"$src"'/package.json").devDependencies.bun')

# Nothing to do when the same lock file is installed and its bun runs.
if cmp -s "$src/package-lock.json" "$dest/package-lock.json" && [ "$("$bun" --version 2>/dev/null)" = "$want" ]; then
  echo "bun peer: Bun $want in $dest"
  exit 0
fi
command -v npm >/dev/null || { echo "npm is missing (scripts/install-deps.sh installs it)" >&2; exit 1; }
echo "installing Bun $want from the npm registry into $dest"
mkdir -p "$dest"
cp "$src/package.json" "$src/package-lock.json" "$dest/"
(cd "$dest" && npm ci --no-audit --no-fund --loglevel=error) ||
  { echo "npm ci of the pinned bun into $dest failed (see npm's error above)" >&2; exit 1; }
# Prove it runs: a missing platform package or a postinstall that did not
# run leaves a bun that cannot start.
have=$("$bun" --version 2>&1) || { echo "$bun does not run after npm ci: $have" >&2; exit 1; }
[ "$have" = "$want" ] || { echo "$bun --version says $have, not the pinned $want" >&2; exit 1; }
echo "bun peer: Bun $have in $dest"
