#!/usr/bin/env python3
"""Print every metric series name the Grafana dashboard queries, one per line.

Names are printed exactly as queried (a histogram shows up as its `_bucket`
series), so each one can be looked for in a live server's /metrics text.
`--base` prints histogram/summary base names instead (`_bucket`, `_sum`,
`_count` stripped), as they appear in `# TYPE` lines. `--rules FILE` adds the
metrics that a Prometheus rules file queries. Standard library only.

    scripts/dashboard-metrics.py [--base] [--rules charts/ws-chat/rules/ws-chat.rules.yaml]
"""
import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DASHBOARD = ROOT / "charts/ws-chat/dashboards/ws-chat.json"

# PromQL words that look like identifiers but are not metric names.
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right",
            "bool", "and", "or", "unless", "offset", "inf", "nan", "le"}
IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """Metric names in one PromQL expression (no full parser: enough for ours)."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)           # string literals
    s = re.sub(r"\{[^}]*\}", " ", s)                       # label matchers
    s = re.sub(r"\[[^\]]*\]", " ", s)                      # ranges, subqueries
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    names = set()
    for m in IDENT.finditer(s):
        word = m.group(0)
        rest = s[m.end():].lstrip()
        if rest.startswith("("):                           # a function call
            continue
        if word.lower() in KEYWORDS or word.startswith("$"):
            continue
        if s[max(0, m.start() - 1)] == "$":                # a Grafana variable
            continue
        if re.fullmatch(r"[0-9eE.]+", word):
            continue
        names.add(word)
    return names


def dashboard_exprs(dashboard: dict) -> list[str]:
    exprs = []

    def walk(panels):
        for panel in panels:
            for target in panel.get("targets", []):
                if target.get("expr"):
                    exprs.append(target["expr"])
            walk(panel.get("panels", []))

    walk(dashboard.get("panels", []))
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") != "query":
            continue
        query = var.get("query")
        query = query.get("query", "") if isinstance(query, dict) else (query or "")
        # label_values(metric{...}, label): the first argument is the metric.
        m = re.match(r"\s*label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*$", query)
        exprs.append(m.group(1) if m else re.sub(r"^\s*query_result\((.*)\)\s*$", r"\1", query))
    return exprs


def rules_exprs(path: Path) -> list[str]:
    import yaml  # only needed for --rules
    doc = yaml.safe_load(path.read_text())
    return [r["expr"] for g in doc.get("groups", []) for r in g.get("rules", [])]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dashboard", type=Path, default=DEFAULT_DASHBOARD)
    ap.add_argument("--rules", type=Path, action="append", default=[])
    ap.add_argument("--base", action="store_true", help="strip _bucket/_sum/_count")
    args = ap.parse_args()

    exprs = dashboard_exprs(json.loads(args.dashboard.read_text()))
    for rules in args.rules:
        exprs += rules_exprs(rules)
    names = set()
    for expr in exprs:
        names |= metric_names(expr)
    if args.base:
        names = {re.sub(r"_(bucket|sum|count)$", "", n) for n in names}
    if not names:
        print("no metric names found", file=sys.stderr)
        return 1
    print("\n".join(sorted(names)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
