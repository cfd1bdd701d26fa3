# Hostile input: cargo-fuzz targets in fuzz/ (a crate outside the workspace).
# cargo-fuzz comes from scripts/deps/hostile.sh; its nightly flags are enabled
# on the stable toolchain with RUSTC_BOOTSTRAP=1.
FUZZ_TARGETS := frame client_event query api_request
FUZZ_SECONDS ?= 20
FUZZ_ENV := RUSTC_BOOTSTRAP=1

TEST_TARGETS += fuzz-smoke

.PHONY: fuzz-smoke fuzz-long fuzz-tools

fuzz-tools:
	@cargo fuzz --version >/dev/null 2>&1 || { \
	  echo "cargo-fuzz missing: run 'make deps' (or scripts/deps/hostile.sh)" >&2; exit 1; }

fuzz-smoke: fuzz-tools ## run each fuzz target (frame, client_event, query, api_request) for FUZZ_SECONDS=20 s; fails on any crash
	@set -e; for t in $(FUZZ_TARGETS); do \
	  echo "== fuzz $$t for $(FUZZ_SECONDS)s"; \
	  $(FUZZ_ENV) cargo fuzz run $$t -- -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 2>&1 \
	    | grep -E 'stat::number_of_executed_units|Done|ERROR|panicked|SUMMARY' ; \
	  test $${PIPESTATUS[0]} -eq 0 || { echo "fuzz target $$t failed; see fuzz/artifacts/$$t" >&2; exit 1; }; \
	done

fuzz-long: ## the longer run: 5 minutes per fuzz target (FUZZ_SECONDS=300)
	$(MAKE) --no-print-directory fuzz-smoke FUZZ_SECONDS=300
