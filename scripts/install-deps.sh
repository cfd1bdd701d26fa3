#!/usr/bin/env bash
# Installs what the test suite needs from the package registries, then runs
# every area's installer in scripts/deps/. Idempotent; fails loudly.
set -euo pipefail
cd "$(dirname "$0")/.."

# The reference chat is optional (scripts/deps/reference.sh); when it is
# asked for by REFERENCE_DIR and is not there, fail before installing anything.
if [ -n "${REFERENCE_DIR:-}" ] && [ ! -d "$REFERENCE_DIR" ]; then
  echo "REFERENCE_DIR=$REFERENCE_DIR is not a directory (a relative path is taken from the repository root, $PWD)" >&2
  exit 1
fi

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
# redis-tools (redis-cli) forms the Redis Cluster of the cluster tests; it is a
# dependency of redis-server, named here so that its absence fails here.
apt_install redis-server redis-tools curl
command -v node >/dev/null || { echo "node is missing" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "redis-server is missing" >&2; exit 1; }
command -v redis-cli >/dev/null || { echo "redis-cli is missing (Debian package redis-tools)" >&2; exit 1; }

for script in scripts/deps/*.sh; do
  [ -e "$script" ] || continue
  echo "== $script"
  bash "$script"
done
