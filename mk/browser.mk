# Browser tests: the real page in Debian's chromium (playwright-core) against
# the real ws-chat binary. Dependencies: scripts/deps/browser.sh (make deps).
TEST_TARGETS += test-browser

.PHONY: test-browser
test-browser: ## the page in a real browser (chromium) against target/debug/ws-chat; screenshots in artifacts/screenshots/
	cargo build --bin ws-chat
	@test -d tests/browser/node_modules/playwright-core || { echo "run 'make deps' first (tests/browser/node_modules is missing)" >&2; exit 1; }
	@test -x /usr/bin/chromium || { echo "run 'make deps' first (/usr/bin/chromium is missing)" >&2; exit 1; }
	mkdir -p artifacts/screenshots
	cd tests/browser && WS_CHAT_BIN="$${WS_CHAT_BIN:-$(CURDIR)/target/debug/ws-chat}" \
		node --test --test-concurrency=1 --test-timeout=120000 *.test.mjs
