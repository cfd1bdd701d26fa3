"""Renders the benchmark's results (bench.py's JSON) as Markdown tables:
one table per scenario (per round, with BENCH_ROUNDS), servers side by side,
with ws-chat's ratios (or, for the JWT connect storm, ws-chat's ways of
authenticating side by side, with each JWT's ratio to the static token);
for a fan-out with ws-chat and the Bun peer, a line of ws-chat ÷ bun."""
from __future__ import annotations

import statistics


def _get(report: dict, path: str):
    value = report
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _mib(kib):
    return None if kib is None else kib / 1024


def _fmt(value, digits: int) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


_QUANTILES = {"p50": "p50_ms", "p99": "p99_ms", "p99.9": "p999_ms", "max": "max_ms"}


def _quantiles(what: str, key: str, which: tuple[str, ...] = tuple(_QUANTILES)) -> list:
    """Rows "<what> p50 (ms)", ... of the latency summary at `key`."""
    return [(f"{what} {q} (ms)", lambda r, path=f"{key}.{_QUANTILES[q]}": _get(r, path), 2) for q in which]


# (label, how to compute it from one loadgen report, decimals)
ROWS = {
    "fanout": [
        ("connected", lambda r: _get(r, "connected"), 0),
        ("rooms per connection", lambda r: _get(r, "rooms_per_conn"), 0),
        ("messages sent / scheduled", lambda r: _get(r, "sent_ratio"), 4),
        ("delivered / expected", lambda r: _get(r, "delivered_ratio"), 4),
        ("not delivered within 3 s", lambda r: _get(r, "not_delivered_in_time"), 0),
        ("deliveries per second", lambda r: _get(r, "deliveries_per_s"), 0),
        *_quantiles("latency", "latency_ms"),
        ("server CPU (cores busy)", lambda r: _get(r, "server_cpu_cores"), 3),
        ("server CPU µs per delivery", lambda r: _get(r, "server_cpu_us_per_delivery"), 3),
        ("server RSS under load (MiB)", lambda r: _mib(_get(r, "server_rss_loaded_kib")), 1),
        ("server RSS per connection, all joined (KiB)", lambda r: _get(r, "server_rss_per_conn_kib"), 2),
        ("rate_limited / other errors", lambda r: _pair(r, "rate_limited", "other_errors"), 0),
        ("closed early / failed connects", lambda r: _pair(r, "closed_early", "connect_failed"), 0),
        ("load generator CPU (cores)", lambda r: _get(r, "loadgen_cpu_cores"), 3),
        ("server + load generator CPU µs per delivery", lambda r: _with_generator_us(r), 3),
        ("other processes' CPU (cores)", lambda r: _get(r, "other_cpu_cores"), 3),
        # Shown only when there is a value: ws-chat's metrics, BENCH_PROFILE=1.
        ("frames per write (queue depth per drain, whole run)", lambda r: _frames_per_write(r), 3),
        ("perf: share of server CPU in the kernel (%)", lambda r: _pct(r, "profile.kernel_share"), 1),
        ("perf: share in TCP send, incl. the peer's receive (%)",
         lambda r: _pct(r, "profile.tcp_send_share"), 1),
        ("perf: TCP send µs per delivery", lambda r: _tcp_send_us(r), 3),
        ("trace exports (OTLP requests / KiB, whole run)", lambda r: _trace_exports(r), 0),
    ],
    "api-publish": [
        ("watchers joined", lambda r: _get(r, "joined"), 0),
        ("API calls per second (measured)", lambda r: _get(r, "requests_per_s"), 0),
        ("calls made / scheduled", lambda r: _get(r, "sent_ratio"), 4),
        ("answers other than 201 (whole run)", lambda r: _get(r, "errors"), 0),
        ("status counts (whole run)", lambda r: _statuses(r), 0),
        *_quantiles("API call latency", "api_latency_ms", ("p50", "p99", "max")),
        ("delivered / expected", lambda r: _get(r, "delivered_ratio"), 4),
        ("not delivered within 3 s", lambda r: _get(r, "not_delivered_in_time"), 0),
        ("deliveries per second", lambda r: _get(r, "deliveries_per_s"), 0),
        *_quantiles("delivery latency", "delivery_latency_ms", ("p50", "p99", "max")),
        ("server CPU (cores busy)", lambda r: _get(r, "server_cpu_cores"), 3),
        ("server CPU µs per API call", lambda r: _get(r, "server_cpu_us_per_request"), 1),
        ("server RSS under load (MiB)", lambda r: _mib(_get(r, "server_rss_loaded_kib")), 1),
        ("load generator CPU (cores)", lambda r: _get(r, "loadgen_cpu_cores"), 3),
        ("other processes' CPU (cores)", lambda r: _get(r, "other_cpu_cores"), 3),
    ],
    "idle": [
        ("connected", lambda r: _get(r, "connected"), 0),
        ("time to connect and join all (s)", lambda r: _get(r, "connect_s"), 2),
        ("server CPU while connecting (s)", lambda r: _get(r, "connect_server_cpu_s"), 2),
        ("load generator CPU while connecting (s)", lambda r: _get(r, "connect_loadgen_cpu_s"), 2),
        ("server RSS before (MiB)", lambda r: _mib(_get(r, "server_rss_before_kib")), 1),
        ("server RSS with all connected (MiB)", lambda r: _mib(_get(r, "server_rss_after_kib")), 1),
        ("RSS per idle connection (KiB)", lambda r: _get(r, "server_rss_per_conn_kib"), 2),
        ("of which anonymous (heap, stacks; KiB)", lambda r: _get(r, "server_anon_per_conn_kib"), 2),
        ("server CPU while idle, 5 s (s)", lambda r: _get(r, "server_idle_cpu_s"), 2),
        ("still open after hold", lambda r: _get(r, "still_open_after_hold"), 0),
        ("closed early / failed connects", lambda r: _pair(r, "closed_early", "connect_failed"), 0),
    ],
    "join-storm": [
        ("joined (got history)", lambda r: _get(r, "joined"), 0),
        ("in (got presence after history)", lambda r: _get(r, "in_room"), 0),
        ("time until all joined (s)", lambda r: _unless(r, "all_joined", "all_joined_s"), 2),
        ("time until all in (s)", lambda r: _unless(r, "all_in", "all_in_s"), 2),
        ("presence events received", lambda r: _get(r, "presence_events"), 0),
        ("server CPU until all in (s)", lambda r: _get(r, "server_cpu_s"), 2),
        ("load generator CPU until all in (s)", lambda r: _get(r, "loadgen_cpu_s"), 2),
        ("other processes' CPU until all in (s)", lambda r: _get(r, "other_cpu_s"), 2),
        ("closed early / failed connects", lambda r: _pair(r, "closed_early", "connect_failed"), 0),
    ],
    "connect-storm": [
        ("joined (got history)", lambda r: _get(r, "joined"), 0),
        # Text, so that it gets no ratio column.
        ("distinct tokens", lambda r: _text(_get(r, "distinct_tokens")), 0),
        ("time until all joined (s)", lambda r: _unless(r, "all_joined", "all_joined_s"), 2),
        ("connections per second", lambda r: _get(r, "joined_per_s"), 0),
        *_quantiles("handshake", "handshake_ms"),
        *_quantiles("join", "join_ms", ("p50", "p99")),
        ("server CPU until all joined (s)", lambda r: _get(r, "server_cpu_s"), 2),
        ("server CPU µs per connection", lambda r: _get(r, "server_cpu_us_per_connection"), 1),
        ("server RSS with all connected (MiB)", lambda r: _mib(_get(r, "server_rss_after_kib")), 1),
        ("load generator CPU until all joined (s)", lambda r: _get(r, "loadgen_cpu_s"), 2),
        ("other processes' CPU until all joined (s)", lambda r: _get(r, "other_cpu_s"), 2),
        ("closed early / failed connects", lambda r: _pair(r, "closed_early", "connect_failed"), 0),
    ],
}

# Ratio columns, (numerator, denominator), shown when both are columns.
RATIOS = (("ws-chat", "bun"), ("ws-chat", "reference"), ("ws-chat", "floor"), ("ws-chat", "baseline"),
          ("baseline", "floor"), ("HS256", "static"), ("ES256", "static"))


def _statuses(report: dict):
    counts = report.get("status_counts")
    return None if counts is None else ", ".join(f"{k}: {v:,}" for k, v in counts.items()) or "none"


def _text(value):
    return None if value is None else f"{value:,}"


def _unless(report: dict, flag: str, key: str):
    """The time, or "not all (last at X s)" when the limit ran out first."""
    value = _get(report, key)
    if _get(report, flag) is False and value is not None:
        return f"not all; last at {value:,.2f}"
    return value


def _frames_per_write(report: dict):
    counters = report.get("server_counters") or {}
    frames = counters.get("wschat_outbound_queue_depth_sum")
    drains = counters.get("wschat_outbound_queue_depth_count")
    return frames / drains if frames and drains else None


def _trace_exports(report: dict):
    t = report.get("trace_exports")
    return None if t is None else f"{t['requests']:,} / {t['bytes'] / 1024:,.1f}"


def _pct(report: dict, path: str):
    value = _get(report, path)
    return None if value is None else value * 100


def _tcp_send_us(report: dict):
    share, per = _get(report, "profile.tcp_send_share"), _get(report, "server_cpu_us_per_delivery")
    return share * per if share is not None and per is not None else None


def _with_generator_us(report: dict):
    """Server and generator CPU per delivery together. On loopback the kernel
    charges a delivery's receive to whichever side's context runs it, so a
    server's own figure may carry part of the generator's work or leave it
    there; the same generator runs against every server, so the sum compares
    the whole work a delivery costs."""
    server, gen, rate = (_get(report, k) for k in ("server_cpu_cores", "loadgen_cpu_cores", "deliveries_per_s"))
    if None in (server, gen, rate) or not rate:
        return None
    return (server + gen) / rate * 1e6


def _pair(report: dict, a: str, b: str):
    x, y = _get(report, a), _get(report, b)
    return None if x is None and y is None else f"{x or 0:,} / {y or 0:,}"


def _ratio(a, b) -> str:
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or isinstance(a, bool):
        return ""
    if b == 0:
        return "–" if a == 0 else "∞"
    return f"{a / b:.2f}×"


def scenario_table(entry: dict, servers: list[str]) -> str:
    """One table: a column per server, or per entry["columns"] when the
    scenario names its own (the JWT storm's ways of authenticating)."""
    rows = ROWS[entry["mode"]]
    results = entry["results"]
    servers = entry.get("columns") or servers
    ratios = [(s, other) for s, other in RATIOS if s in servers and other in servers]
    # entry["compare"]: the same columns of another scenario, as ratios.
    compare = entry.get("compare") or {}
    other = compare.get("results") or {}
    versus = [s for s in servers if s in other and "error" not in other[s]]
    head = ["metric", *servers, *[f"{a} / {b}" for a, b in ratios],
            *[f"{s} {compare.get('label', '')}" for s in versus]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, get, digits in rows:
        values = {s: (None if "error" in results.get(s, {}) else get(results.get(s, {}))) for s in servers}
        if label.startswith(("perf:", "frames per write", "trace exports")) and all(v is None for v in values.values()):
            continue
        cells = [label] + [v if isinstance(v, str) else _fmt(v, digits) for v in values.values()]
        cells += [_ratio(values[a], values[b]) for a, b in ratios]
        cells += [_ratio(values[s], get(other[s])) for s in versus]
        lines.append("| " + " | ".join(cells) + " |")
    notes = []
    for s in servers:
        r = results.get(s, {})
        if "error" in r:
            notes.append(f"- **{s}**: run failed: {r['error']}")
        if r.get("server_died"):
            notes.append(f"- **{s}**: the server process died during the run")
        if r.get("all_joined") is False or r.get("all_in") is False:
            notes.append(f"- **{s}**: not every client got in within the time limit")
        counters = r.get("server_counters") or {}
        if counters:
            shown = ", ".join(f"`{k}` {v:,.0f}" for k, v in counters.items())
            notes.append(f"- **{s}** counters after the run: {shown}")
        if _get(r, "profile.error"):
            notes.append(f"- **{s}**: profile failed: {r['profile']['error']}")
        if _get(r, "profile.top_user"):
            top = ", ".join(f"`{sym[:70]}` {share * 100:.1f} %" for sym, share in r["profile"]["top_user"])
            notes.append(f"- **{s}** perf, heaviest user-space symbols (share of its CPU): {top}")
        failures = r.get("failures") or {}
        if failures:
            top = ", ".join(f"{k} ×{v}" for k, v in sorted(failures.items(), key=lambda kv: -kv[1])[:4])
            notes.append(f"- **{s}** failures: {top}")
    floor_total = _get(results.get("floor", {}), "server_cpu_us_per_delivery")
    for s in servers:
        send = _tcp_send_us(results.get(s, {}))
        if s != "floor" and send is not None and floor_total:
            notes.append(f"- **{s}**: its TCP sends alone are {send / floor_total:.2f}× the floor's "
                         "whole CPU per delivery: the least any server writing once per delivery "
                         "would use here, before any work of its own")
    return "\n".join(lines) + ("\n\n" + "\n".join(notes) if notes else "")


# The ws-chat ÷ bun line under a fan-out: (label, path in a loadgen report).
PEER_RATIOS = (("server CPU µs per delivery", "server_cpu_us_per_delivery"),
               ("server + load generator CPU µs per delivery", _with_generator_us),
               ("latency p99", "latency_ms.p99_ms"))


def peer_ratio_line(entry: dict, rounds: list[dict], a: str = "ws-chat", b: str = "bun") -> str | None:
    """For a fan-out run on both `a` and `b`: `a` ÷ `b` for CPU per delivery
    and p99 latency, each round's, and their median when there are several."""
    if entry["mode"] != "fanout" or not all(a in r and b in r for r in rounds):
        return None
    parts = []
    for label, path in PEER_RATIOS:
        get = path if callable(path) else (lambda rep, path=path: _get(rep, path))
        ratios = []
        for r in rounds:
            x, y = (None if "error" in r[s] else get(r[s]) for s in (a, b))
            ratios.append(x / y if isinstance(x, (int, float)) and isinstance(y, (int, float)) and y else None)
        cells = ", ".join("–" if q is None else f"{q:.2f}×" for q in ratios)
        known = [q for q in ratios if q is not None]
        if len(known) > 1:
            cells += f" (median {statistics.median(known):.2f}×)"
        parts.append(f"{label} {cells}")
    by_round = " by round" if len(rounds) > 1 else ""
    return f"**{a} ÷ {b}**{by_round} (below 1: {a} spends less CPU per delivery, is faster at p99): " \
        + "; ".join(parts) + "."


def scenario_tables(entry: dict, servers: list[str]) -> list[str]:
    """The scenario's table, or one per round; then the ws-chat ÷ bun line."""
    rounds = entry.get("rounds") or [entry["results"]]
    if len(rounds) == 1:
        out = [scenario_table(entry, servers), ""]
    else:
        out = []
        for k, r in enumerate(rounds, 1):
            out += [f"Round {k} of {len(rounds)}:", "", scenario_table({**entry, "results": r}, servers), ""]
    line = peer_ratio_line(entry, rounds)
    return out + ([line, ""] if line else [])


def render_markdown(results: dict) -> str:
    m = results["machine"]
    servers = results["servers"]
    out = [
        f"# Benchmark {results['date']}" + (" (quick)" if results["quick"] else ""),
        "",
        f"Command: `{results['command']}` at commit {m['commit']}. "
        f"Machine: {m['nproc']} cores, {m['cpu']}, {m['memory']} RAM, kernel {m['kernel']}; "
        f"{m['node']}, {m['rustc']}" + (f", Bun {m['bun']}" if "bun" in servers else "") + ".",
        "",
        f"Fan-out scenarios: {results['warmup_s']:g} s warm-up, then {results['duration_s']:g} s measured. "
        "One server at a time; the load generator (`loadgen`, "
        + ("one thread" if results.get("fanout_threads", 1) == 1 else f"{results['fanout_threads']} threads")
        + ") runs on the same 2 cores, "
        "its CPU is in the tables. Latency = receive time minus the send time the publisher "
        "wrote into the message; a delivery later than 3 s counts as not delivered."
        + (f" Each scenario that compares servers ran {results['rounds']} rounds, the servers taking "
           "turns within each round." if results.get("rounds", 1) > 1 else ""),
        "",
        "Server settings:",
        "",
        *[f"- {s}: {results['settings'][s]}" for s in servers],
        "",
    ]
    for entry in results["scenarios"]:
        out += [f"## {entry['title']}", "", f"`loadgen --mode {entry.get('loadgen_mode', entry['mode'])} {' '.join(entry['loadgen_args'])}`", ""]
        if entry.get("note"):
            out += [entry["note"], ""]
        out += scenario_tables(entry, servers)
    return "\n".join(out)
