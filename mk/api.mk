# The server API's OpenAPI document (docs/api/openapi.yaml): lint-api checks
# the document, test-api runs schemathesis against the real server. Tools:
# scripts/deps/api.sh (a venv in target/venv-api), installed by `make deps`
# or on first use here, since CI lints before `make deps`.
API_VENV := target/venv-api
API_STAMP := $(API_VENV)/.installed

LINT_TARGETS += lint-api
TEST_TARGETS += test-api

.PHONY: lint-api test-api

$(API_STAMP): scripts/deps/api.sh
	scripts/deps/api.sh

lint-api: $(API_STAMP) ## validate docs/api/openapi.yaml (OpenAPI 3.1 schema, then scripts/api-lint.py: errors documented per operation, closed bodies, patterns, examples)
	$(API_VENV)/bin/openapi-spec-validator --schema 3.1 docs/api/openapi.yaml
	$(API_VENV)/bin/python scripts/api-lint.py

test-api: $(API_STAMP) ## schemathesis against target/debug/ws-chat with an API key (all scopes), then without one (401s); fails on any failure
	scripts/api-schema-test.sh
