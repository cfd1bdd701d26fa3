"""Connections at scale for bench.py (issue 20, items 4 and 5); ws-chat only.

idle-19000: one process (memory broker), 19,000 idle connections in 100
rooms held over two heartbeat periods: RSS per connection, the server's CPU
while idle (the heartbeats' cost), the kernel's memory per socket.
scale-100k: 6 replicas on one redis-server, 100,000 connections from 6
generator processes (one per replica, --shard k/6; a process may hold
20,000 files), 1,000 rooms of 100 members spread over the replicas, then a
modest fan-out: RSS per connection, time to connect, delivery latency
(the generators' histograms merged), Redis's and each replica's CPU.
Also the machinery the ramps of bench_ceiling.py use: `fanout_run` (one
generator per replica, --shard k/n; the generators of one run share a clock,
--clock-base-ms, and start publishing together, --sync-dir), which reads
every process's CPU from /proc over the measured window, each Redis node's
(one redis-server, or every node of a cluster) included. Standard library
only.
"""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import bench_api
import bench_scale_report  # noqa: F401  (registers the report's rows)
from bench_report import _get
from bench_servers import server_counters

ROOT = Path(__file__).resolve().parent.parent
LOADGEN = ROOT / "target" / "release" / "loadgen"
TICKS = os.sysconf("SC_CLK_TCK")
FANOUT_MODE = "fanout --shard k/n --sync-dir DIR --clock-base-ms T (one generator per replica)"


def heartbeat_s() -> float:
    """session.heartbeat_interval of config/default.toml, in seconds."""
    import tomllib
    raw = tomllib.loads((ROOT / "config" / "default.toml").read_text())["session"]["heartbeat_interval"]
    units = {"ms": 0.001, "s": 1, "m": 60}
    unit = next(u for u in ("ms", "s", "m") if raw.endswith(u))
    return float(raw[: -len(unit)]) * units[unit]


def scenarios(quick: bool) -> list[dict]:
    beat = heartbeat_s()
    idle_n, idle_rooms = (2000, 20) if quick else (19_000, 100)
    hold = 2 * beat
    # scale-100k: R rooms x 100 members; 10 publishers per room (whole
    # blocks of connections, so they fall on every replica's slice) at
    # 0.05 msg/s: 0.5 msg/s per room, each message to 100 members.
    reps, rooms, rate, warm, dur = (3, 60, 0.2, 2, 5) if quick else (6, 1000, 0.05, 10, 20)
    scale_args = ["--rooms", str(rooms), "--members", "100", "--publishers", "10", "--rate", str(rate),
                  "--warmup", str(warm), "--duration", str(dur), "--timeout", "300"]
    return [
        {"id": f"idle-{idle_n}", "mode": "scale-idle", "scale": "idle",
         "title": f"{idle_n:,} idle connections in {idle_rooms} rooms, one process, held over two "
                  f"heartbeats ({hold:g} s)",
         "args": ["--connections", str(idle_n), "--rooms", str(idle_rooms), "--duration", f"{hold:g}",
                  "--timeout", "180", "--threads", "2", "--connect-concurrency", "1024"],
         "budget": hold + 240},
        {"id": "scale-100k", "mode": "scale-fanout", "scale": "fanout", "replicas": reps,
         "title": f"{rooms * 100:,} connections on {reps} replicas and one Redis ({reps} generators), "
                  f"{rooms:,} rooms x 100 members, 10 publishers per room at {rate:g} msg/s",
         "args": scale_args, "budget": warm + dur + 420},
    ]


def cpu_s(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def cpu_marks(pids: dict) -> dict:
    return {name: cpu_s(pid) for name, pid in pids.items()}


def cores(before: dict, after: dict, seconds: float) -> dict:
    return {k: round((after[k] - before[k]) / seconds, 3) if after.get(k) is not None
            and before.get(k) is not None else None for k in before}


def merged_latency(buckets: list) -> dict:
    """p50/p99/p99.9/max (ms) of the generators' histograms added together."""
    counts: dict[int, int] = {}
    for value, n in buckets:
        counts[value] = counts.get(value, 0) + n
    total = sum(counts.values())
    out = {"count": total}
    if not total:
        return out
    order = sorted(counts.items())
    for key, q in (("p50_ms", 0.5), ("p99_ms", 0.99), ("p999_ms", 0.999)):
        seen, rank = 0, q * total
        for value, n in order:
            seen += n
            if seen >= rank:
                out[key] = value / 1000
                break
    out["max_ms"] = order[-1][0] / 1000
    return out


def fanout_run(replicas: list, redis, args: list[str], log_dir: Path, tag: str, budget: float,
               extra: tuple[str, ...] = ()) -> dict:
    """One fan-out over `replicas`: generator k connects slice k/n of the
    connections to replica k; all publish from one start; CPU of every
    process over the measured window; the reports combined."""
    n = len(replicas)
    sync = Path(tempfile.mkdtemp(prefix="sync-", dir=log_dir))
    base_ms = int(time.time() * 1000) - 1000
    warm, dur = float(args[args.index("--warmup") + 1]), float(args[args.index("--duration") + 1])
    rss_before = sum(rss_kib(s.proc.pid) or 0 for s in replicas)
    gens, outs = [], []
    t0 = time.monotonic()
    for k, s in enumerate(replicas):
        out = sync / f"report-{k}.json"
        outs.append(out)
        cmd = [str(LOADGEN), "--mode", "fanout", "--url", s.url, "--origin", s.origin, "--token", "dev-token",
               "--label", f"{tag}-{k}", "--server-pid", str(s.proc.pid), "--shard", f"{k}/{n}",
               "--sync-dir", str(sync), "--clock-base-ms", str(base_ms), "--json", str(out), *args, *extra]
        log = open(log_dir / f"loadgen-{tag}-{k}.txt", "wb")
        gens.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT))
    try:
        deadline = t0 + budget
        while not all((sync / f"ready-{k}").exists() for k in range(n)):
            if any(g.poll() is not None for g in gens) or time.monotonic() > deadline:
                return {"error": f"a generator exited or the run passed {budget:g} s before all joined "
                                 f"(logs: {log_dir}/loadgen-{tag}-*.txt)"}
            time.sleep(0.05)
        connect_s = round(time.monotonic() - t0, 2)
        ready = [json.loads((sync / f"ready-{k}").read_text()) for k in range(n)]
        rss_connected = {f"replica {k}": rss_kib(s.proc.pid) for k, s in enumerate(replicas)}
        pids = {f"replica {k}": s.proc.pid for k, s in enumerate(replicas)}
        pids.update(redis.pids)
        pids.update({f"generator {k}": g.pid for k, g in enumerate(gens)})
        start_us = int((time.time() * 1000 - base_ms) * 1000) + 1_000_000
        (sync / "go.tmp").write_text(str(start_us))
        (sync / "go.tmp").rename(sync / "go")
        window_from = base_ms / 1000 + start_us / 1e6 + warm
        time.sleep(max(0.0, window_from - time.time()))
        before, calls_before = cpu_marks(pids), redis.commands()
        time.sleep(max(0.0, window_from + dur - time.time()))
        after, calls_after = cpu_marks(pids), redis.commands()
        for g in gens:
            g.wait(timeout=max(30.0, deadline - time.monotonic()))
        # The replicas' own account (joins refused, closes, broker errors),
        # summed: it says why a generator saw what it saw.
        counted: dict[str, float] = {}
        for s in replicas:
            for key, value in server_counters(s.metrics_url).items():
                counted[key] = counted.get(key, 0) + value
    except subprocess.TimeoutExpired:
        return {"error": f"a generator did not finish within {budget:g} s"}
    finally:
        for g in gens:
            if g.poll() is None:
                g.kill()
                g.wait()
    reports = []
    for k, (g, out) in enumerate(zip(gens, outs)):
        if g.returncode != 0 or not out.exists():
            return {"error": f"generator {k} exited {g.returncode} (log: loadgen-{tag}-{k}.txt)"}
        reports.append(json.loads(out.read_text()))
    calls = {k: round((calls_after[k] - calls_before[k]) / dur, 1) if calls_after.get(k) is not None
             and calls_before.get(k) is not None else None for k in calls_before}
    combined = combine(reports, ready, connect_s, rss_before, rss_connected, cores(before, after, dur), dur,
                       list(redis.pids), calls)
    combined["server_counters"] = counted
    return combined


def combine(reports: list, ready: list, connect_s: float, rss_before: int, rss_connected: dict,
            cpu: dict, dur: float, redis_nodes: list, redis_calls: dict) -> dict:
    """The generators' reports as one; `redis_nodes`: the Redis processes'
    keys in `cpu` (one, `redis-server`, or a cluster's `redis-server :<port>`)."""
    total = lambda key: sum(r.get(key) or 0 for r in reports)  # noqa: E731
    connected = total("connected")
    sent, expected, delivered = total("sent"), total("expected"), total("delivered")
    rss_sum = sum(v or 0 for v in rss_connected.values())
    ws_cpu = [v for k, v in cpu.items() if k.startswith("replica") and v is not None]
    redis_cpu = {k: cpu.get(k) for k in redis_nodes}
    redis_sum = round(sum(redis_cpu.values()), 3) if None not in redis_cpu.values() else None
    per_msg = (lambda c: round(c * 1e6 / (sent / dur), 2) if sent and c is not None else None)  # noqa: E731
    return {
        "connections": total("connections"), "connected": connected,
        "connect_failed": total("connect_failed"), "closed_early": total("closed_early"),
        "joined_when_ready": sum(r["joined"] for r in ready),
        "all_joined": all(r.get("all_joined") for r in reports),
        "connect_s": connect_s, "generator_connect_s_max": max(r.get("connect_s") or 0 for r in reports),
        "server_rss_before_kib": rss_before, "server_rss_connected_kib": rss_connected,
        "server_rss_per_conn_kib": round(rss_sum / connected, 2) if connected else None,
        "server_rss_added_per_conn_kib": round((rss_sum - rss_before) / connected, 2) if connected else None,
        "sent": sent, "scheduled": total("scheduled"),
        "sent_ratio": round(sent / max(1, total("scheduled")), 4),
        "messages_per_s": round(sent / dur, 1),
        "expected": expected, "delivered": delivered,
        "delivered_ratio": round(delivered / expected, 5) if expected else 0.0,
        "not_delivered_in_time": expected - delivered, "late": total("late"),
        "deliveries_per_s": round(delivered / dur, 1),
        "latency_ms": merged_latency([b for r in reports for b in r.get("latency_hist_us") or []]),
        "generator_p99_ms": [_get(r, "latency_ms.p99_ms") for r in reports],
        "cpu_cores": cpu, "ws_chat_cpu_cores": round(sum(ws_cpu), 3),
        # Redis: every node's CPU, their sum, and each per message sent.
        "redis_nodes": redis_nodes, "redis_cpu_cores": redis_sum,
        "redis_cpu_us_per_message": per_msg(redis_sum),
        "redis_cpu_us_per_message_per_node": {k: per_msg(v) for k, v in redis_cpu.items()},
        "redis_commands_per_s": redis_calls,
        "rate_limited": total("rate_limited"), "other_errors": total("other_errors"),
        "failures": {k: v for r in reports for k, v in (r.get("failures") or {}).items()},
    }


def start_replicas(n: int, log_dir: Path, server_cls, env: dict, tag: str, redis=None):
    """`n` ws-chat replicas on `redis` (a bench_api.Redis or RedisCluster;
    default a fresh Redis), which they own: stop() stops it too."""
    redis = redis or bench_api.Redis(log_dir)
    env = {**redis.broker_env, **env}
    replicas = []
    try:
        for k in range(n):
            replicas.append(server_cls("ws-chat", log_dir, None, env, f"-{tag}-{k}"))
    except (RuntimeError, OSError):
        stop(replicas, redis)
        raise
    return replicas, redis


def stop(replicas: list, redis) -> None:
    for s in replicas:
        s.stop()
    if redis:
        redis.stop()


def run_idle(scenario: dict, log_dir: Path, server_cls) -> dict:
    server = server_cls("ws-chat", log_dir, None, None, "-idle-scale")
    out = Path(tempfile.mkstemp(prefix="loadgen-", suffix=".json", dir=log_dir)[1])
    try:
        cmd = [str(LOADGEN), "--mode", "idle", "--url", server.url, "--origin", server.origin,
               "--token", "dev-token", "--label", "ws-chat", "--server-pid", str(server.proc.pid),
               "--json", str(out), *scenario["args"]]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=scenario["budget"])
        (log_dir / f"loadgen-{scenario['id']}.txt").write_text(done.stdout + done.stderr)
        if done.returncode != 0:
            return {"error": f"loadgen exited {done.returncode}: {done.stderr.strip()[-300:]}"}
        report = json.loads(out.read_text())
        if server.proc.poll() is not None:
            report["server_died"] = True
        return report
    except subprocess.TimeoutExpired:
        return {"error": f"loadgen did not finish within {scenario['budget']} s"}
    finally:
        server.stop()


def run(scenario: dict, entry: dict, servers: list[str], log_dir: Path, results: dict,
        server_cls, counters) -> None:
    """Fills `entry` (bench.py's scenario entry)."""
    entry["columns"] = ["ws-chat"]
    if "ws-chat" not in servers:
        entry["note"] = "Not run: this scenario runs ws-chat only, and BENCH_SERVERS leaves it out."
        return
    print(f"== {scenario['id']} on ws-chat", flush=True)
    # The report's command line: what the generators ran.
    entry["loadgen_mode"] = "idle" if scenario["scale"] == "idle" else FANOUT_MODE
    try:
        if scenario["scale"] == "idle":
            entry["results"]["ws-chat"] = report = run_idle(scenario, log_dir, server_cls)
        else:
            replicas, redis = start_replicas(scenario["replicas"], log_dir, server_cls, {}, "scale")
            try:
                report = fanout_run(replicas, redis, scenario["args"], log_dir, "scale", scenario["budget"])
            finally:
                stop(replicas, redis)
            entry["results"]["ws-chat"] = report
    except (RuntimeError, OSError) as e:
        entry["results"]["ws-chat"] = report = {"error": str(e)}
    print("   " + (report.get("error") or "done"), flush=True)
    entry["note"] = NOTES[scenario["scale"]](scenario, entry)


def _idle_note(scenario: dict, entry: dict) -> str:
    return ("ws-chat with its defaults (memory broker; `session.heartbeat_interval` "
            f"{heartbeat_s():g} s). 32 connections per loopback source address, inside the default per-IP "
            "limits, so no limit is raised. The idle window starts 2 s after the last join and lasts two "
            "heartbeat periods; CPU is the process's utime+stime over it. Kernel memory: "
            "`/proc/net/sockstat` before connecting and with all connected (both ends of each loopback "
            "connection; its TCP `mem` counts only buffer pages, which idle sockets hardly hold, and is "
            "shared by every network namespace on the host), and the slab from `/proc/meminfo`, where the "
            "socket structures live (machine-wide: other processes' allocations show in it too); per socket: the change over "
            "twice the connections (both ends). Goal (issue 20): heartbeats ≤ 0.02 cores at 19,000.")


def _scale_note(scenario: dict, entry: dict) -> str:
    n = scenario["replicas"]
    a = scenario["args"]
    rooms, rate = int(a[a.index("--rooms") + 1]), float(a[a.index("--rate") + 1])
    return (f"{n} ws-chat replicas on one redis-server (`CHAT__BROKER__KIND=redis`, defaults otherwise; "
            f"32 connections per source address, inside the default per-IP limits, so none is raised), "
            f"{n} generators: generator k connects the k-th slice of the connections (`--shard k/{n}`) to "
            "replica k; rooms are `i mod R`, so every room has members on every replica, and the 10 "
            "publishing blocks fall on every replica. All publish from one start on a shared clock; "
            "latency percentiles come from the generators' histograms added together. RSS per connection: "
            "the replicas' RSS summed, all joined, over the connections. CPU from /proc over the measured "
            f"window. The rate ({10 * rate:g} msg/s per room, {rooms * 10 * rate * 100:,.0f} deliveries/s) "
            f"is modest on purpose: the connections, not the fan-out, are what is measured, and {2 * n + 1} "
            "processes share 2 cores.")


NOTES = {"idle": _idle_note, "fanout": _scale_note}
