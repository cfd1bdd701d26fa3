#!/usr/bin/env bash
# The compatibility tests' one dependency: the `ws` npm package pinned in
# tests/compat/package-lock.json. Run by scripts/install-deps.sh;
# idempotent; fails loudly, never skips.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v npm >/dev/null || { echo "npm is missing (scripts/install-deps.sh installs it)" >&2; exit 1; }
(cd tests/compat && npm ci --no-audit --no-fund --silent)
[ -f tests/compat/node_modules/ws/package.json ] || { echo "npm ci did not install ws in tests/compat" >&2; exit 1; }
echo "compat test deps ready: ws $(node -p 'require("./tests/compat/node_modules/ws/package.json").version')"
