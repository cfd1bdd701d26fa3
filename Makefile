# Every target is listed by `make help`. Areas add their own targets in
# mk/*.mk and append to TEST_TARGETS so `make test` runs them too.
SHELL := /bin/bash
TEST_TARGETS := test-rust test-compat test-reference
LINT_TARGETS := lint-rust

-include mk/*.mk

.PHONY: help run test deps lint lint-rust test-rust test-compat test-reference
help: ## list targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

run: ## run ws-chat with the embedded defaults (public :8080, admin :8081)
	cargo run --release

deps: ## install what the tests need (Debian, PyPI, npm; with REFERENCE_DIR set, the reference chat into target/reference); fails if it cannot
	scripts/install-deps.sh

test: deps ## install test dependencies, then run every test
	$(MAKE) --no-print-directory $(TEST_TARGETS)

lint: $(LINT_TARGETS) ## formatting and clippy (and any area linters)

lint-rust:
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings

test-rust: ## Rust unit and integration tests (real sockets, real clients); fails if any test is skipped
	@mkdir -p target
	set -o pipefail; cargo test --workspace 2>&1 | tee target/test-rust.log
	@! grep -E '^test result: .* [1-9][0-9]* ignored' target/test-rust.log || \
	  { echo "test-rust: ignored tests are skipped tests; CI runs everything" >&2; exit 1; }

test-compat: ## our own Node client of the reference protocol (tests/compat) against target/debug/ws-chat with no configuration (:8080)
	cargo build --bin ws-chat
	scripts/compat-test.sh ws-chat

test-reference: ## with REFERENCE_DIR: the reference's own smoke client against ws-chat, and tests/compat against the reference server; else says it was not requested
	scripts/smoke-reference.sh
