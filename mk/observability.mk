# Observability checks: the live /metrics exposition against promtool and
# against what the Grafana dashboard and alert rules query. promtool comes
# from scripts/deps/packaging.sh (Debian's prometheus package).
TEST_TARGETS += metrics-check

.PHONY: metrics-check
metrics-check: ## start ws-chat, drive traffic, promtool-lint /metrics, check every dashboard/rule metric is exported
	scripts/metrics-check.sh
