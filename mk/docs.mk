# Documentation checks: every relative link in every tracked Markdown file
# resolves in a clone (scripts/check-links.py, Python standard library only).
# Part of `make lint`, which .ci/run runs.
LINT_TARGETS += docs-links

.PHONY: docs-links
docs-links: ## every relative link (and #anchor) in every tracked *.md resolves inside the repository
	python3 scripts/check-links.py
