#!/usr/bin/env bash
# Browser tests: Debian's chromium (never a downloaded browser build) and the
# npm packages pinned in tests/browser/package-lock.json. Run as root by
# scripts/install-deps.sh. Idempotent; fails loudly, never skips.
set -euo pipefail
cd "$(dirname "$0")/../.."

# chromium, plus fonts so that Korean text and emoji render in screenshots
# instead of empty boxes.
missing=()
for pkg in chromium fonts-nanum fonts-noto-color-emoji; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  # Wait for another apt/dpkg run (e.g. a parallel installer) instead of failing.
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${missing[@]}" >/dev/null
fi
test -x /usr/bin/chromium || { echo "/usr/bin/chromium is missing after apt-get install" >&2; exit 1; }
/usr/bin/chromium --version >/dev/null 2>&1 || { echo "/usr/bin/chromium does not run" >&2; exit 1; }

command -v npm >/dev/null || { echo "npm is missing (scripts/install-deps.sh installs it)" >&2; exit 1; }
# playwright-core never downloads a browser on install; the tests use
# /usr/bin/chromium through executablePath.
(cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
test -d tests/browser/node_modules/playwright-core || { echo "npm ci did not install playwright-core" >&2; exit 1; }
echo "browser test deps ready: $(/usr/bin/chromium --version)"
