# Load tests (k6) and the side-by-side benchmark; owned by loadtest/.
TEST_TARGETS += loadtest test-bun-peer

.PHONY: loadtest loadtest-reference bench bench-quick loadgen test-bun-peer
loadtest: ## short k6 suite (fanout, connect storm, soak, abuse, JWT) against a fresh ws-chat
	cargo build --quiet -p ws-chat
	WS_CHAT_BIN=$${WS_CHAT_BIN:-target/debug/ws-chat} loadtest/k6/run.sh ws-chat

loadtest-reference: ## the same k6 suite against the Node reference server (needs REFERENCE_DIR, prepared by make deps)
	loadtest/k6/run.sh reference

test-bun-peer: ## the compatibility tests (tests/compat) against the benchmark's Bun peer, loadtest/peers/bun (:8080)
	scripts/deps/bun.sh
	COMPAT_SERVER=loadtest/peers/bun/server.js COMPAT_RUNTIME=target/bun/node_modules/.bin/bun \
	  scripts/compat-test.sh bun-peer

loadgen: ## build the compiled load generator and the floor server (release)
	cargo build --release -p ws-chat-loadtest

bench: ## release build, then ws-chat vs bun vs reference (when REFERENCE_DIR is set) vs floor (bench.py installs the pinned Bun); writes loadtest/results/<date>.{md,json}
	cargo build --release -p ws-chat -p ws-chat-loadtest
	python3 loadtest/bench.py

bench-quick: ## the benchmark with small numbers, for a smoke run (BENCH_QUICK=1)
	cargo build --release -p ws-chat -p ws-chat-loadtest
	BENCH_QUICK=1 python3 loadtest/bench.py
