# The code's layering (docs/architecture.md): imports in src/ only go down.
LINT_TARGETS += lint-layers

.PHONY: lint-layers
lint-layers: ## check that imports in src/ go one way, down the layers of docs/architecture.md
	python3 scripts/check-layers.py
