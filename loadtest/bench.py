#!/usr/bin/env python3
"""The side-by-side benchmark: ws-chat, the Bun peer, the Node reference and
the floor.

Each scenario runs against one freshly started server at a time (never two
at once: they would compete for the 2 cores), with the compiled load
generator. Writes loadtest/results/<YYYY-MM-DD>.md and .json.

Environment: BENCH_QUICK=1 (small numbers, for a smoke run), BENCH_DURATION
(measured seconds per fan-out scenario, default 20), BENCH_WARMUP (default 5),
BENCH_SERVERS (comma list, default ws-chat,bun,reference,floor, where reference
is left out when REFERENCE_DIR is unset; "baseline" is an earlier ws-chat
build, run like ws-chat from the binary named by BENCH_BASELINE), BENCH_ONLY
(comma list of scenario ids), BENCH_ROUNDS (default 1: how many times each
scenario that compares servers runs, the servers alternating: ws-chat, bun,
…, then again ws-chat, bun, …; the report shows every round, and the JSON
keeps them all in "rounds", the first also in "results"), BENCH_OUT (output
path without extension), BENCH_PROFILE=1 (record each server with `perf`
during the measured fan-out window and report how much of its CPU is the
kernel's TCP send path: the part no server that writes once per delivery
can avoid; and its heaviest user-space symbols), BENCH_TRACES=0 (ws-chat
without traces; by default it samples 1% and exports them over OTLP/HTTP to
a sink in this process, bench_traces.py), BENCH_JWT_USERS (distinct users,
one JWT each, in the JWT connect storm; default a tenth of its clients),
BENCH_FANOUT_THREADS (the one-room fan-out scenarios' generator threads,
default 1).
The many-rooms fan-out (fanout-rooms: 2,000 connections in 8 rooms each,
through protocol version 2 `join`) runs on ws-chat, and on a baseline build
only if a short probe shows that it answers `join` with `history`; the
reference, the Bun peer and the floor have no `join`, and are left out,
saying so.
fanout-rooms-1 is its control, on every server: the same 2,000 connections,
80 members per room and publishing, one room per connection (25 rooms).
The JWT connect storm (jwt-storm-*) runs ws-chat only, once per way of
authenticating: the static token, HS256 JWTs and ES256 JWTs
(bench_tokens.py mints them; ES256 needs the `openssl` CLI).
The server API publishes (api-publish: one process, memory broker;
api-publish-redis: two processes on one redis-server, calls to one and
watchers on the other) run ws-chat only; see bench_api.py.
The connections at scale (idle-*, scale-100k; bench_scale.py) and the
ramps (redis-2-ceiling; redis-4-vs-cluster, four replicas on one Redis
against a 3-master Redis Cluster, which needs redis-cli; bench_ceiling.py)
run ws-chat only.
The reference chat is not part of ws-chat: the "reference" server runs only
from target/reference as prepared from REFERENCE_DIR by `make deps`
(scripts/reference-ready.sh decides).
The "bun" server is our Bun peer, loadtest/peers/bun/server.js, on the Bun
pinned there; scripts/deps/bun.sh installs it into target/bun when missing,
and the run stops if it cannot.
Alongside: bench_scenarios.py (the scenarios and their sizes),
bench_servers.py (starting each server), bench_profile.py (BENCH_PROFILE),
bench_report.py (the Markdown), bench_api.py, bench_scale.py,
bench_ceiling.py and bench_tokens.py.
Standard library only.
"""
from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the work tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_report import render_markdown  # noqa: E402
from bench_profile import Profiler  # noqa: E402
from bench_scenarios import DURATION, FANOUT_THREADS, JOIN_PROBE, QUICK, ROUNDS, WARMUP, scenarios  # noqa: E402
from bench_servers import (BUN, RELEASE, ROOT, TOKEN, TRACES, Server, bun_ready, raise_nofile,  # noqa: E402
                           reference_ready, server_counters)
import bench_api  # noqa: E402
import bench_ceiling  # noqa: E402
import bench_scale  # noqa: E402
import bench_tokens  # noqa: E402
import bench_traces  # noqa: E402

PROFILE = os.environ.get("BENCH_PROFILE", "") not in ("", "0")


def run_one(scenario: dict, name: str, log_dir: Path, config: Path | None = None,
            extra: tuple[str, ...] = (), column: str | None = None, log_tag: str = "") -> dict:
    """One loadgen run of `scenario` against a fresh `name` server (started
    with `--config config` when given), with `extra` loadgen arguments;
    `column` names the run in logs and the report (default: the server);
    `log_tag` tells rounds' loadgen logs apart."""
    column = column or name
    try:
        server = Server(name, log_dir, config)
    except (RuntimeError, OSError) as e:
        return {"error": str(e)}
    out = Path(tempfile.mkstemp(prefix="loadgen-", suffix=".json")[1])
    cmd = [str(RELEASE / "loadgen"), "--mode", scenario["mode"], "--url", server.url,
           "--origin", server.origin, "--token", TOKEN, "--label", column,
           "--server-pid", str(server.proc.pid), "--json", str(out), *scenario["args"], *extra]
    profiler = Profiler(server.proc.pid, WARMUP, DURATION) if PROFILE and scenario["mode"] == "fanout" else None
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=scenario["budget"],
                              preexec_fn=raise_nofile)
        profile = profiler.finish() if profiler else None
        traces = bench_traces.sink().take() if TRACES else None
        (log_dir / f"loadgen-{scenario['id']}-{column}{log_tag}.txt").write_text(done.stdout + done.stderr)
        alive = server.proc.poll() is None
        counters = server_counters(server.metrics_url) if alive and server.metrics_url else {}
        if done.returncode != 0 or out.stat().st_size == 0:
            return {"error": f"loadgen exited {done.returncode}: {done.stderr.strip()[-300:]}"}
        report = json.loads(out.read_text())
        if not alive:
            report["server_died"] = True
        if counters:
            report["server_counters"] = counters
        if profile is not None:
            report["profile"] = profile
        if server.metrics_url and traces is not None:
            report["trace_exports"] = traces
        return report
    except subprocess.TimeoutExpired:
        return {"error": f"loadgen did not finish within {scenario['budget']} s"}
    finally:
        if profiler:
            profiler.timer.cancel()
        server.stop()
        out.unlink(missing_ok=True)


def run_rounds(scenario: dict, entry: dict, run_on: list[str], log_dir: Path) -> None:
    """`scenario` on each server of `run_on` in turn, ROUNDS times over, so
    that a slow spell of the shared machine is not all one server's. Fills
    entry["results"] with the first round and, with more than one,
    entry["rounds"] with every round."""
    rounds = []
    for k in range(1, ROUNDS + 1):
        done = {}
        for name in run_on:
            which = f", round {k} of {ROUNDS}" if ROUNDS > 1 else ""
            print(f"== {scenario['id']} on {name}{which}", flush=True)
            report = run_one(scenario, name, log_dir, log_tag=f"-round{k}" if ROUNDS > 1 else "")
            done[name] = report
            print("   " + (report.get("error") or "done"), flush=True)
            time.sleep(1)
        rounds.append(done)
    entry["results"] = rounds[0]
    if ROUNDS > 1:
        entry["rounds"] = rounds


# ws-chat's default limits.user_max_connections.
USER_CAP = 20


def run_variants(scenario: dict, entry: dict, servers: list[str], log_dir: Path) -> None:
    """The JWT connect storm: ws-chat once per way of authenticating (the
    columns), each run on a fresh server trusting the same HS256 and ES256
    keys, so that only the tokens the clients send differ."""
    entry["columns"] = scenario["variants"]
    if "ws-chat" not in servers:
        entry["note"] = "Not run: this scenario runs ws-chat only, and BENCH_SERVERS leaves it out."
        return
    clients, users = scenario["clients"], scenario["users"]
    per_user = -(-clients // users)
    try:
        keys = bench_tokens.Keys(Path(tempfile.mkdtemp(prefix="jwt-", dir=log_dir)))
    except (OSError, subprocess.CalledProcessError) as e:
        entry["note"] = f"Not run: making the JWT keys failed ({e}); ES256 needs the openssl CLI."
        return
    if per_user > USER_CAP:
        # More clients per user than a user may hold by default: raised, said below.
        with keys.config.open("a") as f:
            f.write(f"[limits]\nuser_max_connections = {per_user}\n")
    minted = {}
    for variant in scenario["variants"]:
        extra: tuple[str, ...] = ()
        if variant != "static":
            # Minted before the server starts, so minting is not measured.
            path, took = keys.mint(variant, users)
            minted[variant] = took
            extra = ("--tokens-file", str(path))
        print(f"== {scenario['id']} on ws-chat with {variant} tokens", flush=True)
        report = run_one(scenario, "ws-chat", log_dir, keys.config, extra, variant)
        entry["results"][variant] = report
        print("   " + (report.get("error") or "done"), flush=True)
        time.sleep(1)
    raised = (f"; `limits.user_max_connections` raised to {per_user}" if per_user > USER_CAP
              else f", under the default `limits.user_max_connections` ({USER_CAP})")
    entry["note"] = (
        "Every column is ws-chat with the same settings: its defaults plus an HS256 key and an ES256 "
        "(P-256) public key (`--config`). *static*: every client sends the static token (a guest). "
        f"*HS256*, *ES256*: {users:,} users with one JWT each (a distinct `sub`), each JWT sent by "
        f"{per_user} clients{raised}. Tokens go in `?token=`. Minted by `loadtest/bench_tokens.py` before "
        "the server started: " + ", ".join(f"{k} {v:.1f} s" for k, v in minted.items()) + ".")

def join_servers(servers: list[str], log_dir: Path) -> tuple[list[str], str]:
    """The servers a many-rooms scenario can run on, and a note saying which
    were left out and why: the reference, the Bun peer and the floor know no `join`; a
    baseline build runs only when a probe shows it answers one."""
    ran, why = [], []
    for name in servers:
        if name in ("reference", "bun", "floor"):
            why.append(f"{name} (it has no version 2 `join`: one room per connection)")
            continue
        if name == "baseline":
            probe = run_one(JOIN_PROBE, name, log_dir)
            if probe.get("error"):
                why.append(f"baseline (the `join` probe failed: {probe['error']})")
                continue
            if not probe.get("all_joined") or probe.get("other_errors"):
                why.append("baseline (its answer to a version 2 `join` was not `history`: the build "
                           "predates several rooms per connection)")
                continue
        ran.append(name)
    note = "Each connection is in the room of its query string, then sends a version 2 `join` for each " \
           "other room; every join is answered by `history` before publishing starts. Publishers send " \
           "`message` with `room`, round-robin over their rooms. Every room has exactly its members; " \
           "the layout is in `loadtest/src/bin/loadgen/rooms.rs`."
    if why:
        note += " Not run on: " + "; ".join(why) + "."
    return ran, note


def machine() -> dict:
    def sh(*cmd: str) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return "unknown"

    model = next((line.split(":", 1)[1].strip() for line in sh("lscpu").splitlines()
                  if line.startswith("Model name")), "unknown")
    dirty = sh("git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no")
    return {
        "nproc": sh("nproc"), "cpu": model, "kernel": sh("uname", "-r"),
        "memory": sh("sh", "-c", "free -h | awk '/Mem:/{print $2}'"),
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
        "node": sh("node", "--version"), "rustc": sh("rustc", "--version"),
        "bun": sh(str(BUN), "--version") if BUN.exists() else "not installed",
        "commit": sh("git", "-C", str(ROOT), "rev-parse", "--short", "HEAD") + (" (dirty)" if dirty else ""),
    }

def chosen_servers() -> list[str]:
    """BENCH_SERVERS, or the default list; the default leaves the reference
    out, saying so, when REFERENCE_DIR does not ask for it."""
    if os.environ.get("BENCH_SERVERS", "").strip():
        return [s.strip() for s in os.environ["BENCH_SERVERS"].split(",") if s.strip()]
    if os.environ.get("REFERENCE_DIR"):
        return ["ws-chat", "bun", "reference", "floor"]
    print("bench: the reference chat is left out: REFERENCE_DIR is unset (the reference is not part of "
          "ws-chat; to compare with it, set REFERENCE_DIR to a copy of it and run `make deps` with it set)",
          flush=True)
    return ["ws-chat", "bun", "floor"]


def main() -> int:
    servers = chosen_servers()
    only = {s.strip() for s in os.environ.get("BENCH_ONLY", "").split(",") if s.strip()}
    need = [RELEASE / "loadgen"] + [RELEASE / s for s in servers if s in ("ws-chat", "floor")]
    missing = [str(p) for p in need if not p.exists()]
    if "reference" in servers and (why := reference_ready()):
        missing.append(f"the reference chat ({why})")
    if "bun" in servers and (why := bun_ready()):
        missing.append(f"Bun for the Bun peer ({why})")
    if "baseline" in servers and not Path(os.environ.get("BENCH_BASELINE", "/nonexistent")).exists():
        missing.append("BENCH_BASELINE (an earlier ws-chat binary)")
    if PROFILE and subprocess.run(["sh", "-c", "command -v perf"], capture_output=True).returncode:
        missing.append("perf (Debian's linux-perf), for BENCH_PROFILE")
    jwt_storm = any("variants" in s and (not only or s["id"] in only) for s in scenarios())
    if jwt_storm and "ws-chat" in servers and subprocess.run(["sh", "-c", "command -v openssl"],
                                                             capture_output=True).returncode:
        missing.append("the openssl CLI (ES256 tokens for the JWT connect storm)")
    if missing:
        print("bench: cannot run, missing:\n  " + "\n  ".join(missing)
              + "\n(`make bench` builds the binaries)", file=sys.stderr)
        return 1
    raise_nofile()
    today = datetime.date.today().isoformat()
    out = Path(os.environ.get("BENCH_OUT", ROOT / "loadtest" / "results" / (today + ("-quick" if QUICK else ""))))
    out.parent.mkdir(parents=True, exist_ok=True)
    log_dir = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    knobs = [f"{k}={os.environ[k]}" for k in ("BENCH_QUICK", "BENCH_DURATION", "BENCH_WARMUP",
                                               "BENCH_SERVERS", "BENCH_ONLY", "BENCH_ROUNDS",
                                               "BENCH_BASELINE", "BENCH_PROFILE", "BENCH_TRACES",
                                               "BENCH_FANOUT_THREADS")
             if os.environ.get(k)]
    command = " ".join([*knobs, "make bench"])
    results = {"date": today, "quick": QUICK, "command": command, "machine": machine(),
               "servers": servers, "settings": {s: Server.SETTINGS[s] for s in servers},
               "duration_s": DURATION, "warmup_s": WARMUP, "rounds": ROUNDS,
               "fanout_threads": FANOUT_THREADS, "scenarios": []}
    for scenario in scenarios():
        if only and scenario["id"] not in only:
            continue
        entry = {k: scenario[k] for k in ("id", "title", "mode")}
        entry["loadgen_args"] = scenario["args"]
        entry["results"] = {}
        run_on = servers
        if scenario.get("needs_join"):
            run_on, entry["note"] = join_servers(servers, log_dir)
            entry["columns"] = run_on
            if run_on != servers:
                print(f"== {scenario['id']}: runs on {', '.join(run_on) or 'no server'} only; not on "
                      + entry["note"].split(" Not run on: ", 1)[-1], flush=True)
        if "ramp" in scenario:
            bench_ceiling.run(scenario, entry, servers, log_dir, results, Server, server_counters)
        elif "scale" in scenario:
            bench_scale.run(scenario, entry, servers, log_dir, results, Server, server_counters)
        elif "api" in scenario:
            bench_api.run(scenario, entry, servers, log_dir, results, Server, server_counters)
        elif "variants" in scenario:
            run_variants(scenario, entry, servers, log_dir)
        else:
            run_rounds(scenario, entry, run_on, log_dir)
        results["scenarios"].append(entry)
        # Written after every scenario, so a stopped run still leaves numbers.
        out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
        out.with_suffix(".md").write_text(render_markdown(results))
    print(f"wrote {out}.md and {out}.json (server logs in {log_dir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
