"""The fan-out ramps for bench.py: the publishers' rate doubles per step
until p99 passes 100 ms or a delivery is lost; ws-chat only.

redis-2-ceiling: two replicas on one redis-server: where the ceiling is,
and which process is at it.
redis-4-vs-cluster (issue 21, item 6): four replicas on one redis-server
against the same four replicas' load on a 3-master Redis Cluster
(bench_api.RedisCluster; rooms by hash tag over the masters, messages by
SPUBLISH on the room's node). The two set-ups take turns at every step
(which goes first alternates), so a slow spell of the shared machine hits
both alike: each one's ceiling, Redis CPU per message on each node, the
busiest process at the end.
Each run is bench_scale.fanout_run (one generator per replica, CPU of
every process from /proc over the measured window). Standard library only.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import bench_api
from bench_report import _get
from bench_scale import FANOUT_MODE, fanout_run, start_replicas, stop

P99_LIMIT_MS = 100.0
# The set-ups of redis-4-vs-cluster: column suffix -> (log tag, Redis class).
SIDES = {"one Redis": ("one", bench_api.Redis), "cluster": ("cluster", bench_api.RedisCluster)}


def scenarios(quick: bool) -> list[dict]:
    # 100 rooms x 10 members, 5 publishers per room; the publishers' rate
    # doubles each step (messages per second x 10 = deliveries).
    rooms, steps, warm, dur = (20, [2, 8], 1, 3) if quick else (100, [2, 4, 8, 16, 32, 64, 128], 3, 10)
    args = ["--rooms", str(rooms), "--members", "10", "--publishers", "5",
            "--warmup", str(warm), "--duration", str(dur), "--timeout", "120"]
    load = (f"{rooms} rooms x 10 members, 5 publishers per room, the rate doubling per step until "
            f"p99 > {P99_LIMIT_MS:g} ms")
    return [
        {"id": "redis-2-ceiling", "mode": "scale-ceiling", "ramp": "ceiling", "replicas": 2, "steps": steps,
         "title": f"Two replicas on one Redis: {load}", "args": args, "budget": warm + dur + 150},
        {"id": "redis-4-vs-cluster", "mode": "scale-compare", "ramp": "compare", "replicas": 4, "steps": steps,
         "title": f"Four replicas on one Redis against the same on a 3-master Redis Cluster, taking turns "
                  f"at each step: {load}", "args": args, "budget": warm + dur + 150},
    ]


# Message limits raised for the ramps: publishers send up to 128 msg/s,
# the per-connection default is 2/s (a burst of 20).
CEILING_ENV = {"CHAT__LIMITS__MESSAGE_BURST": "1000", "CHAT__LIMITS__MESSAGE_REFILL": "1ms",
               "CHAT__LIMITS__USER_MESSAGE_BURST": "1000", "CHAT__LIMITS__USER_MESSAGE_REFILL": "1ms",
               "CHAT__LIMITS__IP_MESSAGE_BURST": "100000", "CHAT__LIMITS__IP_MESSAGE_REFILL": "10us"}


def within(report: dict) -> bool:
    p99 = _get(report, "latency_ms.p99_ms")
    return ("error" not in report and p99 is not None and p99 <= P99_LIMIT_MS
            and report.get("delivered_ratio", 0) >= 0.999)


def step(scenario: dict, replicas: list, redis, rate: float, column: str, tag: str, log_dir: Path) -> dict:
    print(f"== {scenario['id']}: publishers at {column}", flush=True)
    report = fanout_run(replicas, redis, scenario["args"], log_dir, f"{tag}-{rate:g}",
                        scenario["budget"], ("--rate", str(rate)))
    print("   " + (report.get("error") or f"{report['deliveries_per_s']:,.0f} deliveries/s, "
                                           f"p99 {_get(report, 'latency_ms.p99_ms')} ms"), flush=True)
    return report


def run_ceiling(scenario: dict, entry: dict, log_dir: Path, server_cls) -> None:
    replicas, redis = start_replicas(scenario["replicas"], log_dir, server_cls, CEILING_ENV, "ceiling")
    try:
        for rate in scenario["steps"]:
            column = f"{rate:g} msg/s"
            entry["columns"].append(column)
            entry["results"][column] = report = step(scenario, replicas, redis, rate, column, "ceiling", log_dir)
            if not within(report):
                break
    finally:
        stop(replicas, redis)
    marginal(entry)
    entry["ceiling"] = ceiling(entry, entry["columns"])


def run_compare(scenario: dict, entry: dict, log_dir: Path, server_cls) -> None:
    """Both set-ups up for the whole ramp (the one not under load idles);
    each step runs on every set-up still within the limit."""
    a = scenario["args"]
    rooms = [f"bench-{i}" for i in range(int(a[a.index("--rooms") + 1]))]  # loadgen's room names
    sides = {}
    try:
        for name, (tag, cls) in SIDES.items():
            sides[name] = start_replicas(scenario["replicas"], log_dir, server_cls, CEILING_ENV, tag,
                                         cls(log_dir))
        cluster = sides["cluster"][1]
        owned = cluster.rooms_per_node(rooms)
        entry["cluster"] = {"nodes": list(cluster.pids), "rooms_per_node": owned}
        live = list(SIDES)
        for i, rate in enumerate(scenario["steps"]):
            done = {}
            for name in (live if i % 2 == 0 else live[::-1]):
                column = f"{rate:g} msg/s, {name}"
                done[name] = step(scenario, *sides[name], rate, column, SIDES[name][0], log_dir)
                time.sleep(1)
            for name, report in sorted(done.items(), key=lambda kv: list(SIDES).index(kv[0])):
                column = f"{rate:g} msg/s, {name}"
                entry["columns"].append(column)
                entry["results"][column] = report
                own = owned if name == "cluster" else {"redis-server": len(rooms)}
                per = report.get("redis_cpu_us_per_message_per_node") or {}
                # Rooms publish alike, so a node carries its rooms' share of the messages.
                report["redis_cpu_us_per_carried_message_per_node"] = {
                    k: round(v * len(rooms) / own[k], 2) if v is not None and own.get(k) else None
                    for k, v in per.items()}
                if not within(report):
                    live.remove(name)
            if not live:
                break
    finally:
        for replicas, redis in sides.values():
            stop(replicas, redis)
    entry["ceiling"] = {}
    for name in SIDES:
        columns = [c for c in entry["columns"] if c.endswith(", " + name)]
        marginal(entry, columns)
        entry["ceiling"][name] = ceiling(entry, columns)


def ceiling(entry: dict, columns: list[str]) -> dict:
    """The last step within the limit, and the busiest process at the last step run."""
    good = [(c, entry["results"][c]) for c in columns if within(entry["results"][c])]
    last = entry["results"][columns[-1]] if columns else {}
    busiest = max((last.get("cpu_cores") or {"none": 0}).items(), key=lambda kv: kv[1] or 0)
    return {"deliveries_per_s": good[-1][1]["deliveries_per_s"] if good else None,
            "at": good[-1][0] if good else None, "last": columns[-1] if columns else None,
            "sent_ratio_at_last": last.get("sent_ratio"), "busiest_at_last_step": busiest,
            "cpu_at_last": cpu_split(last)}


def marginal(entry: dict, columns: list[str] | None = None) -> None:
    """Redis CPU per message from one step to the next (of `columns`, by
    default all), in total and per node: its fixed work per second (cron,
    the replicas' presence refreshes, a cluster's gossip) drops out, which
    at low rates is most of the plain CPU per message."""
    prev = None
    for column in entry["columns"] if columns is None else columns:
        r = entry["results"][column]
        cpu, rate, nodes = r.get("redis_cpu_cores"), r.get("messages_per_s"), r.get("cpu_cores") or {}
        if prev and cpu is not None and rate and rate > prev[1]:
            added = rate - prev[1]
            r["redis_marginal_us_per_message"] = round((cpu - prev[0]) * 1e6 / added, 2)
            r["redis_marginal_us_per_message_per_node"] = {
                k: round((nodes[k] - prev[2][k]) * 1e6 / added, 2) for k in r.get("redis_nodes") or []
                if nodes.get(k) is not None and prev[2].get(k) is not None}
        prev = (cpu, rate, nodes) if cpu is not None and rate else None


def run(scenario: dict, entry: dict, servers: list[str], log_dir: Path, results: dict,
        server_cls, counters) -> None:
    """Fills `entry` (bench.py's scenario entry): a column per step (and set-up)."""
    entry["columns"] = []
    if "ws-chat" not in servers:
        entry["columns"] = ["ws-chat"]
        entry["note"] = "Not run: this scenario runs ws-chat only, and BENCH_SERVERS leaves it out."
        return
    print(f"== {scenario['id']} on ws-chat", flush=True)
    entry["loadgen_mode"] = FANOUT_MODE
    try:
        (run_ceiling if scenario["ramp"] == "ceiling" else run_compare)(scenario, entry, log_dir, server_cls)
        print("   done", flush=True)
    except (RuntimeError, OSError) as e:
        entry["columns"].append("set-up")
        entry["results"]["set-up"] = {"error": str(e)}
        print(f"   {e}", flush=True)
    entry["note"] = (_ceiling_note if scenario["ramp"] == "ceiling" else _compare_note)(scenario, entry)


def _limits() -> str:
    return ("Message limits raised (" + ", ".join(f"`{k}={v}`" for k, v in CEILING_ENV.items())
            + ") so publishers may send up to the step's rate. ")


def _where(c: dict) -> str:
    """The ceiling of one ramp in words."""
    where = (f"**{c['deliveries_per_s']:,.0f} deliveries/s at {c['at']}**" if c.get("at")
             else "no step stayed within the limit")
    if c.get("at") and c["at"] == c.get("last"):
        where += " (the last step: the limit was not reached; the ceiling lies higher)"
    if (c.get("sent_ratio_at_last") or 1) < 0.95:
        where += (f"; at the last step the generators sent only {c['sent_ratio_at_last']:.0%} of the "
                  "schedule: they, not the servers, were the limit there")
    busy = c.get("busiest_at_last_step")
    if busy and c.get("last"):
        where += f"; at the last step ({c['last']}) the busiest process was {busy[0]} ({busy[1]} cores)"
    if c.get("cpu_at_last"):
        where += "; " + c["cpu_at_last"]
    return where


def cpu_split(r: dict) -> str | None:
    """Where the machine's cores went at one step, in words."""
    cpu = {k: v for k, v in (r.get("cpu_cores") or {}).items() if v is not None}
    if not cpu:
        return None
    part = lambda prefix: sum(v for k, v in cpu.items() if k.startswith(prefix))  # noqa: E731
    redis = [v for k, v in cpu.items() if k.startswith("redis-server")]
    busiest_node = f", its busiest node {max(redis):.2f}" if len(redis) > 1 else ""
    return (f"cores: ws-chat {part('replica'):.2f}, Redis {sum(redis):.2f}{busiest_node}, generators "
            f"{part('generator'):.2f}; {sum(cpu.values()):.2f} of the machine's {os.cpu_count()}")


def _ceiling_note(scenario: dict, entry: dict) -> str:
    c = entry.get("ceiling") or {}
    return ("Two replicas on one redis-server, two generators (one per replica, each room's members "
            "split between them). " + _limits() + "The ramp stops after the first step whose "
            f"p99 passes {P99_LIMIT_MS:g} ms or that loses a delivery. Ceiling: " + _where(c) + ".")


def _compare_note(scenario: dict, entry: dict) -> str:
    c = entry.get("ceiling") or {}
    cl = entry.get("cluster") or {}
    owned = cl.get("rooms_per_node") or {}
    nodes = ", ".join(f"node {k} = `{n}` ({owned.get(n, '?')} rooms)" for k, n in enumerate(cl.get("nodes", []), 1))
    one, many = (c.get(s) or {} for s in SIDES)
    ratio = ""
    if one.get("deliveries_per_s") and many.get("deliveries_per_s"):
        ratio = (f" Cluster ÷ one Redis at the ceiling: {many['deliveries_per_s'] / one['deliveries_per_s']:.2f}×"
                 + (" (a lower bound: a ramp ended without reaching the limit)."
                    if one.get("at") == one.get("last") or many.get("at") == many.get("last") else "."))
    return (
        f"{scenario['replicas']} ws-chat replicas and {scenario['replicas']} generators (one per replica, "
        "each room's members split between them) on each set-up: *one Redis* (one redis-server, "
        "`CHAT__BROKER__KIND=redis`) and *cluster* (3 masters, no replicas: the point is sharding, not "
        "failover; `CHAT__BROKER__REDIS_MODE=cluster`, `CHAT__BROKER__REDIS_URLS` = the three nodes; each "
        "room's keys and channel share its hash tag `{room}`, so its slot and node; messages by SPUBLISH "
        f"there). Cluster nodes: {nodes or 'not started'}; on *one Redis*, node 1 is its redis-server. "
        "Both set-ups stay up for the whole ramp; at each step the same load runs on one, then the other, "
        "the order alternating per step, so the one not under load idles (its CPU is not counted). "
        + _limits() + f"A set-up leaves the ramp after its first step whose p99 passes {P99_LIMIT_MS:g} ms "
        "or that loses a delivery (more than 0.1 %). Redis CPU per message: a node's CPU over all messages "
        "sent (the nodes' figures add up to the total), and over the messages it carried (its rooms' "
        "share; rooms publish alike), the figure to set beside one Redis's; commands/s per node from "
        "`INFO stats`. Ceiling, one Redis: " + _where(one) + ". Ceiling, cluster: "
        + _where(many) + "." + ratio)

