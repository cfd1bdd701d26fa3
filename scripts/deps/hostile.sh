#!/usr/bin/env bash
# Fuzzing tools: cargo-fuzz (from crates.io) and a C++ compiler for
# libFuzzer. Run by scripts/install-deps.sh; idempotent; anything missing or
# not running after the install is a failure, never a skip.
set -euo pipefail
cd "$(dirname "$0")/../.."

CARGO_FUZZ_VERSION=0.13.2

if ! command -v c++ >/dev/null; then
  echo "installing Debian package: g++ (libFuzzer is C++)"
  export TMPDIR=/var/tmp DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends g++ >/dev/null
fi
command -v c++ >/dev/null || { echo "no C++ compiler after installing g++" >&2; exit 1; }

if [ "$(cargo fuzz --version 2>/dev/null | awk '{print $2}')" != "$CARGO_FUZZ_VERSION" ]; then
  echo "installing cargo-fuzz $CARGO_FUZZ_VERSION from crates.io"
  cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi
cargo fuzz --version || { echo "cargo-fuzz does not run" >&2; exit 1; }
# The targets must build on this toolchain (nightly flags via RUSTC_BOOTSTRAP).
RUSTC_BOOTSTRAP=1 cargo fuzz build >/dev/null || { echo "fuzz targets do not build" >&2; exit 1; }
echo "fuzz targets build"
