# Packaging and operations: container image, Helm chart, kustomize overlays,
# alert rules. Tools come from scripts/deps/packaging.sh (a venv in
# target/venv-packaging, promtool from Debian's prometheus package).
PKG_VENV := target/venv-packaging
PKG_PY := $(PKG_VENV)/bin/python
# The venv first on PATH: its yamllint and hadolint, and its kubectl when the
# machine has none.
PKG_ENV := PATH="$(CURDIR)/$(PKG_VENV)/bin:$$PATH"
IMAGE ?= ws-chat:dev
GIT_SHA := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)

TEST_TARGETS += chart-lint k8s-validate rules-test hadolint

WS_CHAT_DEBUG := target/debug/ws-chat
.PHONY: $(WS_CHAT_DEBUG)
$(WS_CHAT_DEBUG):
	cargo build --bin ws-chat

.PHONY: image chart-lint k8s-validate rules-test hadolint packaging-tools

packaging-tools:
	@[ -x $(PKG_PY) ] && command -v promtool >/dev/null || { \
	  echo "packaging tools missing: run 'make deps' (or scripts/deps/packaging.sh as root)" >&2; exit 1; }

image: ## build the container image (IMAGE=ws-chat:dev; needs a Docker/BuildKit engine; not part of the tests)
	@docker info >/dev/null 2>&1 || { \
	  echo "make image: no container engine reachable (docker info failed). Build on a machine with Docker/BuildKit:" >&2; \
	  echo "  DOCKER_BUILDKIT=1 docker build --build-arg WSCHAT_GIT_SHA=$(GIT_SHA) -t $(IMAGE) ." >&2; exit 1; }
	DOCKER_BUILDKIT=1 docker build --build-arg WSCHAT_GIT_SHA=$(GIT_SHA) -t $(IMAGE) .

chart-lint: packaging-tools ## yamllint, helm lint + render of charts/ws-chat/ci/*.yaml, refused values, dashboard JSON
	$(PKG_ENV) $(PKG_PY) scripts/chart-check.py lint

k8s-validate: packaging-tools $(WS_CHAT_DEBUG) ## validate every chart and kustomize (dev, prod) object: k8s schemas (3 newest minors, strict) + policy
	$(PKG_ENV) $(PKG_PY) scripts/chart-check.py validate

rules-test: packaging-tools ## promtool check + unit tests of the alert rules, and check of the rendered PrometheusRule
	$(PKG_ENV) $(PKG_PY) scripts/chart-check.py rules

hadolint: packaging-tools ## lint the Dockerfile with hadolint
	$(PKG_ENV) hadolint Dockerfile && echo "hadolint: Dockerfile clean"
