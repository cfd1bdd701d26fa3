"""chart-check.py's parts (scripts/chart-check.py runs them)."""
