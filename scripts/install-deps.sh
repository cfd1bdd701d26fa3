#!/usr/bin/env bash
# Installs what the test suite needs from the package registries, then runs
# every area's installer in scripts/deps/. Idempotent; fails loudly.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}
export -f apt_install

# Node may come from another source that bundles npm: install only what is missing.
command -v node >/dev/null || apt_install nodejs
command -v npm >/dev/null || apt_install npm
apt_install redis-server curl
command -v node >/dev/null || { echo "node is missing" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "redis-server is missing" >&2; exit 1; }

# ../shared is read-only: the reference server and smoke client run from an
# unchanged copy in target/reference, next to their `ws` dependency.
mkdir -p target/reference
cp ../shared/reference/{package.json,server.js,index.html,smoke-client.mjs} target/reference/
if [ ! -d target/reference/node_modules/ws ]; then
  (cd target/reference && npm install --no-audit --no-fund --silent)
fi

for script in scripts/deps/*.sh; do
  [ -e "$script" ] || continue
  echo "== $script"
  bash "$script"
done
