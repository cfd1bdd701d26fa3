#!/usr/bin/env bash
# Runs the compatibility tests in tests/compat (node --test, TAP output)
# against COMPAT_SERVER: target/debug/ws-chat by default, or a server.js
# (the reference chat; the benchmark's Bun peer, run by COMPAT_RUNTIME). Fails
# if a test fails or is skipped; the last line says how many passed. Usage:
# scripts/compat-test.sh [label]. Used by `make test-compat`,
# `make test-bun-peer` and scripts/smoke-reference.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
label=${1:-ws-chat}
[ -f tests/compat/node_modules/ws/package.json ] || {
  echo "run 'make deps' first (tests/compat/node_modules is missing)" >&2; exit 1; }
mkdir -p target
log=target/test-compat-$label.log
status=0
(cd tests/compat && node --test --test-reporter=tap --test-concurrency=1 --test-timeout=60000 ./*.test.mjs) 2>&1 |
  tee "$log" || status=$?
# TAP's closing counts, e.g. "# pass 10"; 0 when the line is missing.
count() { local n; n=$(sed -n "s/^# $1 \([0-9]*\)$/\1/p" "$log" | tail -1); echo "${n:-0}"; }
passed=$(count pass) failed=$(count fail) skipped=$(( $(count skipped) + $(count todo) ))
if [ "$status" -eq 0 ] && [ "$passed" -gt 0 ] && [ "$failed" -eq 0 ] && [ "$skipped" -eq 0 ]; then
  echo "compat tests against $label: $passed passed, 0 failed"
else
  echo "compat tests against $label: $passed passed, $failed failed, $skipped skipped (a skipped test is a failure here); see $log" >&2
  exit 1
fi
