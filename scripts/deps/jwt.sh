#!/usr/bin/env bash
# The JWT tests (tests/jwt.rs, tests/jwks.rs) make real RSA, EC and Ed25519
# keys with the openssl CLI at test time.
set -euo pipefail
command -v openssl >/dev/null || apt_install openssl
command -v openssl >/dev/null || { echo "openssl is missing" >&2; exit 1; }
