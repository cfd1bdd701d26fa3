#!/usr/bin/env bash
# The server API checks' tools (mk/api.mk): pinned PyPI packages in a venv at
# target/venv-api. Run by scripts/install-deps.sh, and by `make lint-api` /
# `make test-api` when the venv is missing (CI lints before `make deps`).
# Idempotent; a tool that cannot be installed or does not run is a failure.
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV=target/venv-api
# Bump together, then run `make lint-api test-api`.
PY_PINS=(
  openapi-spec-validator==0.9.0  # lint-api: the document against the OpenAPI 3.1 schema
  schemathesis==4.32.5           # test-api: generated requests against the real server
  PyYAML==6.0.4                  # scripts/api-lint.py reads the document
)

source scripts/deps/lib/venv.sh
ensure_venv "$VENV"
# pip is a no-op when the pinned versions are already there.
"$VENV/bin/pip" install --quiet --disable-pip-version-check "${PY_PINS[@]}"

# Prove each tool runs, so a broken install fails here and not mid-test.
"$VENV/bin/openapi-spec-validator" --version
"$VENV/bin/schemathesis" --version
"$VENV/bin/python" -c 'import yaml, jsonschema, referencing'
# mk/api.mk's stamp: newer than this script means nothing to install.
touch "$VENV/.installed"
