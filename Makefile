.PHONY: help run test
help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'
run: ## run ws-chat with the embedded defaults
	cargo run --release
test: ## install test dependencies, then run every test
	cargo test
