"""The report's rows for bench_scale.py's scenarios: bench_report renders
every scenario from ROWS[entry["mode"]]; importing this module adds the
scale-idle, scale-fanout, scale-ceiling and scale-compare (bench_ceiling.py)
modes' rows."""
from __future__ import annotations

import bench_report
from bench_report import _get, _mib


def _sock(r: dict, what: str):
    b, a = r.get("sockstat_before") or {}, r.get("sockstat_after") or {}
    if not a:
        return None
    # Both ends of every connection are on this machine: 2 sockets each (the
    # counts' own deltas also move with anything else in the namespace).
    alloc = 2 * (r.get("connected") or 0)
    if what == "per_socket":
        # TCP `mem` is the host's, all namespaces: a fall says others freed more.
        pages = a.get("tcp_mem", 0) - b.get("tcp_mem", 0)
        return pages * 4096 / alloc if alloc > 0 and pages >= 0 else None
    if what == "slab_per_socket":
        return ((a["slab_kib"] - b["slab_kib"]) * 1024 / alloc
                if alloc > 0 and "slab_kib" in a and "slab_kib" in b else None)
    return f"{b.get(what, 0):,} → {a.get(what, 0):,}"


def _cpu_rows(names: list[str]) -> list:
    return [(f"CPU {n} (cores)", lambda r, n=n: _get(r, "cpu_cores." + n) if "cpu_cores" in r
             and n in r["cpu_cores"] else None, 3) for n in names]


# The report's rows for these scenarios (bench_report renders them).
bench_report.ROWS.update({
    "scale-idle": [
        ("connected / failed connects", lambda r: bench_report._pair(r, "connected", "connect_failed"), 0),
        ("time to connect and join all (s)", lambda r: _get(r, "connect_s"), 2),
        ("server RSS with all connected (MiB)", lambda r: _mib(_get(r, "server_rss_after_kib")), 1),
        ("RSS per idle connection (KiB)", lambda r: _get(r, "server_rss_per_conn_kib"), 2),
        ("of which anonymous (heap, stacks; KiB)", lambda r: _get(r, "server_anon_per_conn_kib"), 2),
        ("idle window (s)", lambda r: _get(r, "hold_s"), 0),
        ("server CPU while idle (cores)", lambda r: _get(r, "server_idle_cpu_cores"), 4),
        ("load generator CPU while idle (cores)", lambda r: _get(r, "loadgen_idle_cpu_cores"), 4),
        ("still open after the window", lambda r: _get(r, "still_open_after_hold"), 0),
        ("kernel: TCP sockets in use", lambda r: _sock(r, "tcp_inuse"), 0),
        ("kernel: TCP sockets allocated", lambda r: _sock(r, "tcp_alloc"), 0),
        ("kernel: TCP memory (pages)", lambda r: _sock(r, "tcp_mem"), 0),
        ("kernel: TCP memory per socket (bytes)", lambda r: _sock(r, "per_socket"), 0),
        ("kernel: slab (KiB)", lambda r: _sock(r, "slab_kib"), 0),
        ("kernel: slab per socket (bytes)", lambda r: _sock(r, "slab_per_socket"), 0),
    ],
    "scale-fanout": [
        ("connected / failed connects", lambda r: bench_report._pair(r, "connected", "connect_failed"), 0),
        ("time to connect and join all (s)", lambda r: _get(r, "connect_s"), 2),
        ("replicas' RSS per connection (KiB)", lambda r: _get(r, "server_rss_per_conn_kib"), 2),
        ("… of which added by the connections (KiB)", lambda r: _get(r, "server_rss_added_per_conn_kib"), 2),
        ("messages sent / scheduled", lambda r: _get(r, "sent_ratio"), 4),
        ("delivered / expected", lambda r: _get(r, "delivered_ratio"), 5),
        ("not delivered within 3 s", lambda r: _get(r, "not_delivered_in_time"), 0),
        ("deliveries per second", lambda r: _get(r, "deliveries_per_s"), 0),
        *bench_report._quantiles("latency (merged)", "latency_ms"),
        ("worst generator's own p99 (ms)", lambda r: max(r.get("generator_p99_ms") or [None], key=lambda v: v or 0), 2),
        ("ws-chat CPU, all replicas (cores)", lambda r: _get(r, "ws_chat_cpu_cores"), 3),
        *_cpu_rows([f"replica {k}" for k in range(6)] + ["redis-server"]),
        ("redis-server CPU per message (µs)", lambda r: _get(r, "redis_cpu_us_per_message"), 2),
        ("generators' CPU (cores)", lambda r: round(sum(v or 0 for k, v in (r.get("cpu_cores") or {}).items()
                                                      if k.startswith("generator")), 3) if "cpu_cores" in r else None, 3),
        ("rate_limited / other errors", lambda r: bench_report._pair(r, "rate_limited", "other_errors"), 0),
    ],
})
bench_report.ROWS["scale-ceiling"] = [
    ("messages per second", lambda r: _get(r, "messages_per_s"), 0),
    ("deliveries per second", lambda r: _get(r, "deliveries_per_s"), 0),
    ("delivered / expected", lambda r: _get(r, "delivered_ratio"), 5),
    ("messages sent / scheduled", lambda r: _get(r, "sent_ratio"), 4),
    *bench_report._quantiles("latency", "latency_ms", ("p50", "p99", "max")),
    *_cpu_rows(["replica 0", "replica 1", "redis-server", "generator 0", "generator 1"]),
    ("redis-server CPU per message (µs)", lambda r: _get(r, "redis_cpu_us_per_message"), 2),
    ("… from the step before: added CPU / added messages (µs)",
     lambda r: _get(r, "redis_marginal_us_per_message"), 2),
]


def _node(r: dict, k: int, path: str):
    """Redis node k's (0-based) value in the dict at `path` (keyed by node)."""
    nodes = r.get("redis_nodes") or []
    return (r.get(path) or {}).get(nodes[k]) if k < len(nodes) else None


def _busiest(r: dict):
    cpu = {k: v for k, v in (r.get("cpu_cores") or {}).items() if v is not None}
    return None if not cpu else "{} ({:.2f})".format(*max(cpu.items(), key=lambda kv: kv[1]))


_NODES = range(3)
# redis-4-vs-cluster: columns are steps x {one Redis, cluster}; "node k" is
# the k-th Redis process (one Redis: node 1 only), named in the note.
bench_report.ROWS["scale-compare"] = [
    *bench_report.ROWS["scale-ceiling"][:7],
    ("ws-chat CPU, all replicas (cores)", lambda r: _get(r, "ws_chat_cpu_cores"), 3),
    ("Redis CPU, all nodes (cores)", lambda r: _get(r, "redis_cpu_cores"), 3),
    *[(f"Redis node {k + 1} CPU (cores)", lambda r, k=k: _node(r, k, "cpu_cores"), 3) for k in _NODES],
    ("Redis CPU per message, all nodes (µs)", lambda r: _get(r, "redis_cpu_us_per_message"), 2),
    *[(f"Redis node {k + 1} CPU per message sent (µs)",
       lambda r, k=k: _node(r, k, "redis_cpu_us_per_message_per_node"), 2) for k in _NODES],
    *[(f"Redis node {k + 1} CPU per message it carried (µs)",
       lambda r, k=k: _node(r, k, "redis_cpu_us_per_carried_message_per_node"), 2) for k in _NODES],
    ("… all nodes, from the step before: added CPU / added messages (µs)",
     lambda r: _get(r, "redis_marginal_us_per_message"), 2),
    *[(f"Redis node {k + 1} commands/s", lambda r, k=k: _node(r, k, "redis_commands_per_s"), 0) for k in _NODES],
    ("generators' CPU (cores)", lambda r: round(sum(v or 0 for k, v in (r.get("cpu_cores") or {}).items()
                                                  if k.startswith("generator")), 3) if "cpu_cores" in r else None, 3),
    ("busiest process (cores)", _busiest, 0),
    ("rate_limited / other errors", lambda r: bench_report._pair(r, "rate_limited", "other_errors"), 0),
]
