#!/usr/bin/env python3
"""The side-by-side benchmark: ws-chat, the Node reference and the floor.

Each scenario runs against one freshly started server at a time (never two
at once: they would compete for the 2 cores), with the compiled load
generator. Writes loadtest/results/<YYYY-MM-DD>.md and .json.

Environment: BENCH_QUICK=1 (small numbers, for a smoke run), BENCH_DURATION
(measured seconds per fan-out scenario, default 20), BENCH_WARMUP (default 5),
BENCH_SERVERS (comma list, default ws-chat,reference,floor, where reference
is left out when REFERENCE_DIR is unset; "baseline" is an earlier ws-chat
build, run like ws-chat from the binary named by BENCH_BASELINE), BENCH_ONLY (comma list of scenario ids), BENCH_OUT (output
path without extension), BENCH_PROFILE=1 (record each server with `perf`
during the measured fan-out window and report how much of its CPU is the
kernel's TCP send path: the part no server that writes once per delivery
can avoid), BENCH_JWT_USERS (distinct users, one JWT each, in the JWT
connect storm; default a tenth of its clients).
The many-rooms fan-out (fanout-rooms: 2,000 connections in 8 rooms each,
through protocol version 2 `join`) runs on ws-chat, and on a baseline build
only if a short probe shows that it answers `join` with `history`; the
reference and the floor have no `join`, and are left out, saying so.
fanout-rooms-1 is its control, on every server: the same 2,000 connections,
80 members per room and publishing, one room per connection (25 rooms).
The JWT connect storm (jwt-storm-*) runs ws-chat only, once per way of
authenticating: the static token, HS256 JWTs and ES256 JWTs
(bench_tokens.py mints them; ES256 needs the `openssl` CLI).
The server API publishes (api-publish: one process, memory broker;
api-publish-redis: two processes on one redis-server, calls to one and
watchers on the other) run ws-chat only; see bench_api.py.
The reference chat is not part of ws-chat: the "reference" server runs only
from target/reference as prepared from REFERENCE_DIR by `make deps`
(scripts/reference-ready.sh decides).
Standard library only.
"""
from __future__ import annotations

import datetime
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RELEASE = ROOT / "target" / "release"
TOKEN = "dev-token"
NOFILE = 65536

sys.dont_write_bytecode = True  # no __pycache__ in the work tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_report import render_markdown  # noqa: E402
import bench_api  # noqa: E402
import bench_scale  # noqa: E402
import bench_tokens  # noqa: E402


def env_num(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    return float(raw) if raw else default


QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
DURATION = env_num("BENCH_DURATION", 5 if QUICK else 20)
WARMUP = env_num("BENCH_WARMUP", 2 if QUICK else 5)
PROFILE = os.environ.get("BENCH_PROFILE", "") not in ("", "0")


def scenarios() -> list[dict]:
    def fanout(members: int, publishers: int) -> dict:
        return {
            "id": f"fanout-{members}",
            "title": f"One room, {members} members, {publishers} publishers at 1.5 msg/s",
            "mode": "fanout",
            "args": ["--rooms", "1", "--members", str(members), "--publishers", str(publishers),
                     "--rate", "1.5", "--warmup", str(WARMUP), "--duration", str(DURATION)],
            "budget": WARMUP + DURATION + 90,
        }

    def fanout_rooms(conns: int, per_conn: int) -> dict:
        # Many rooms per connection (protocol version 2 `join`): 8 rooms each,
        # 80 members per room (a realistic audience), and the one-room
        # scenarios' publishing: one member in five publishes, 1.5 msg/s,
        # round-robin over its rooms. 16 connections per source address:
        # their 7 joins each (112) stay inside the per-IP message burst
        # (200), which 32 (224) would not. With per_conn = 1 it is the
        # control: the same connections, audience, message rate and frames
        # per connection, in one room each.
        members = 80
        rooms = conns * per_conn // members
        what = f"in {per_conn} rooms each" if per_conn > 1 else "in one room each (the control for fanout-rooms)"
        return {
            "id": "fanout-rooms" if per_conn > 1 else "fanout-rooms-1",
            "title": f"{conns:,} connections {what}: {rooms} rooms × {members} members, "
                     f"{members // 5} publishers per room at 1.5 msg/s"
                     + (" round-robin over their rooms" if per_conn > 1 else ""),
            "mode": "fanout",
            "args": ["--rooms", str(rooms), "--members", str(members), "--rooms-per-conn", str(per_conn),
                     "--publishers", str(members // 5), "--rate", "1.5", "--per-ip", "16",
                     "--timeout", "120", "--warmup", str(WARMUP), "--duration", str(DURATION)],
            "budget": WARMUP + DURATION + 200,
            "needs_join": per_conn > 1,
        }

    if QUICK:
        idle_n, idle_rooms, storm_n, auth_n = 1000, 10, 500, 500
        fan = [fanout(100, 20), fanout(200, 40), fanout_rooms(400, 1), fanout_rooms(400, 8)]
    else:
        idle_n, idle_rooms, storm_n, auth_n = 10_000, 100, 5_000, 10_000
        fan = [fanout(200, 40), fanout(500, 100), fanout(1000, 200), fanout_rooms(2000, 1), fanout_rooms(2000, 8)]
    users = int(env_num("BENCH_JWT_USERS", max(1, auth_n // 10)))
    return fan + [
        {
            "id": f"idle-{idle_n}",
            "title": f"{idle_n:,} idle connections in {idle_rooms} rooms",
            "mode": "idle",
            # Two generator threads and 1,024 handshakes in flight: with one
            # thread and 256 the generator, not the server, set the time.
            "args": ["--connections", str(idle_n), "--rooms", str(idle_rooms), "--duration", "5",
                     "--timeout", "120", "--threads", "2", "--connect-concurrency", "1024"],
            "budget": 200,
        },
        {
            "id": f"join-{storm_n}",
            "title": f"{storm_n:,} clients joining one room as fast as possible",
            "mode": "join-storm",
            "args": ["--clients", str(storm_n), "--timeout", "120"],
            "budget": 300,
        },
        {
            "id": f"jwt-storm-{auth_n}",
            "title": f"{auth_n:,} clients connecting into {idle_rooms} rooms: static token, HS256 and ES256 JWTs",
            "mode": "connect-storm",
            # As the idle scenario connects: two generator threads, 1,024 in flight.
            "args": ["--clients", str(auth_n), "--rooms", str(idle_rooms), "--timeout", "120",
                     "--threads", "2", "--connect-concurrency", "1024"],
            "budget": 300,
            "variants": ["static", "HS256", "ES256"],
            "clients": auth_n,
            "users": users,
        },
    ] + bench_api.scenarios(QUICK) + bench_scale.scenarios(QUICK)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_nofile() -> None:
    """Runs in the child before exec: the equivalent of `ulimit -n 65536`."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, max(hard, NOFILE)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(NOFILE, hard), hard))


def http_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code
    except (urllib.error.URLError, OSError):
        return None


class Server:
    """One server process started for one scenario run."""

    metrics_url: str | None = None

    SETTINGS = {
        "ws-chat": "defaults, except: listen on 127.0.0.1 with free ports "
                   "(CHAT__SERVER__HOST/PORT/ADMIN_HOST/ADMIN_PORT), CHAT_TOKEN=dev-token, "
                   "CHAT__AUTH__ALLOWED_ORIGINS=http://localhost:<port>; per-IP limits stay on",
        "reference": "node server.js, PORT and ALLOWED_ORIGINS only",
        "floor": "target/release/floor --listen 127.0.0.1:<port>",
        "baseline": "an earlier ws-chat build ($BENCH_BASELINE), same settings as ws-chat",
    }

    def __init__(self, name: str, log_dir: Path, config: Path | None = None,
                 env_extra: dict | None = None, tag: str = ""):
        """`env_extra`: more environment (ws-chat: a Redis broker); `tag`
        tells replicas' logs apart."""
        self.name = name
        self.port = free_port()
        self.origin = f"http://localhost:{self.port}"
        self.log = open(log_dir / f"{name}{tag}.log", "ab")
        env = dict(os.environ)
        cwd = ROOT
        if name in ("ws-chat", "baseline"):
            admin = free_port()
            for k in ("PORT", "ALLOWED_ORIGINS"):
                env.pop(k, None)
            env.update({
                "CHAT__SERVER__HOST": "127.0.0.1", "CHAT__SERVER__ADMIN_HOST": "127.0.0.1",
                "CHAT__SERVER__PORT": str(self.port), "CHAT__SERVER__ADMIN_PORT": str(admin),
                "CHAT_TOKEN": TOKEN, "CHAT__AUTH__ALLOWED_ORIGINS": self.origin,
            })
            cmd = [str(RELEASE / "ws-chat") if name == "ws-chat" else os.environ["BENCH_BASELINE"]]
            if config is not None:
                cmd += ["--config", str(config)]
            env.update(env_extra or {})
            self.admin_url = f"http://127.0.0.1:{admin}"
            self.ready_url = f"http://127.0.0.1:{admin}/readyz"
            self.metrics_url = f"http://127.0.0.1:{admin}/metrics"
            self.ready = lambda s: s == 200
        elif name == "reference":
            env.update({"PORT": str(self.port), "ALLOWED_ORIGINS": self.origin, "CHAT_TOKEN": TOKEN})
            cmd = ["node", "server.js"]
            cwd = ROOT / "target" / "reference"
            self.ready_url = f"http://127.0.0.1:{self.port}/healthz"
            self.ready = lambda s: s == 200
        elif name == "floor":
            cmd = [str(RELEASE / "floor"), "--listen", f"127.0.0.1:{self.port}"]
            self.ready_url = f"http://127.0.0.1:{self.port}/"
            self.ready = lambda s: s is not None  # any HTTP answer (404)
        else:
            raise SystemExit(f"unknown server {name}")
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=self.log, stderr=self.log,
                                     preexec_fn=raise_nofile)
        deadline = time.monotonic() + 30
        while not self.ready(http_status(self.ready_url)):
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {self.proc.returncode} before it was ready")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{name} not ready within 30 s ({self.ready_url})")
            time.sleep(0.1)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/chat"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.log.close()


# ws-chat's own counters that explain lost deliveries, and the queue depth
# per drain (frames per write); read after the run.
COUNTERS = ("wschat_drops_total", "wschat_slow_consumer_closes_total",
            "wschat_messages_delivered_total", "wschat_rate_limited_total",
            "wschat_upgrade_rejections_total", "wschat_outbound_queue_depth_sum",
            "wschat_outbound_queue_depth_count", "wschat_jwt_failures_total")


class Profiler:
    """`perf record` of one server over the measured part of a fan-out run.

    Starts after the warm-up (plus time to connect) and stops before the
    end, so only steady publishing is sampled."""

    def __init__(self, pid: int):
        self.data = Path(tempfile.mkstemp(prefix="perf-", suffix=".data")[1])
        self.proc: subprocess.Popen | None = None
        seconds = max(DURATION - 4, 2)
        # System-wide (-a), filtered to the server when reporting: with -p,
        # perf spins on poll() once a thread it follows exits (tokio's
        # blocking threads do), taking a core from the server it measures.
        # No build-id collection (-B -N), which would read the binaries at
        # the end, while the server is still being measured.
        cmd = ["perf", "record", "-q", "-a", "-B", "-N", "-F", "999", "-e", "cpu-clock", "-g",
               "-o", str(self.data), "--", "sleep", f"{seconds:g}"]
        self.pid = pid
        self.timer = threading.Timer(WARMUP + 2, self._start, args=(cmd,))
        self.timer.start()

    def _start(self, cmd: list[str]) -> None:
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def finish(self) -> dict:
        self.timer.cancel()
        try:
            if self.proc is None:
                return {"error": "perf did not start (the run ended first)"}
            if self.proc.wait(timeout=60) != 0:
                return {"error": f"perf record exited {self.proc.returncode}"}
            return perf_shares(self.data, self.pid)
        finally:
            self.data.unlink(missing_ok=True)


def perf_shares(data: Path, pid: int) -> dict:
    """Shares of the server's samples: in the kernel, and under `tcp_sendmsg`
    (the TCP send, the loopback and the peer's receive and wake-up, all of
    which the kernel charges to the writer)."""
    def report(*args: str) -> list[list[str]]:
        done = subprocess.run(["perf", "report", "-i", str(data), "--pid", str(pid), "--stdio", "--percentage", "relative",
                               "-g", "none", *args],
                              capture_output=True, text=True, timeout=300)
        return [line.split() for line in done.stdout.splitlines() if "%" in line and not line.startswith("#")]

    def pct(cell: str) -> float:
        return round(float(cell.rstrip("%")) / 100, 4)

    # Kernel symbols' own samples ("[k]"): with -a the dso column does not
    # name the kernel reliably.
    own = [cols for cols in report("--no-children", "--sort", "sym") if len(cols) >= 3]
    shares = {"kernel_share": round(sum(pct(c[0]) for c in own if c[1] == "[k]"), 4)}
    for cols in report("--children", "--sort", "sym"):
        if len(cols) == 4 and cols[2] == "[k]" and cols[3] == "tcp_sendmsg":
            shares["tcp_send_share"] = pct(cols[0])
    return shares if "tcp_send_share" in shares else {"error": "no tcp_sendmsg samples"}


def server_counters(url: str) -> dict:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            text = resp.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError):
        return {}
    found = {}
    for line in text.splitlines():
        if line.startswith(COUNTERS):
            name, _, value = line.rpartition(" ")
            try:
                if float(value) > 0:
                    found[name] = float(value)
            except ValueError:
                continue
    return found


def run_one(scenario: dict, name: str, log_dir: Path, config: Path | None = None,
            extra: tuple[str, ...] = (), column: str | None = None) -> dict:
    """One loadgen run of `scenario` against a fresh `name` server (started
    with `--config config` when given), with `extra` loadgen arguments;
    `column` names the run in logs and the report (default: the server)."""
    column = column or name
    try:
        server = Server(name, log_dir, config)
    except (RuntimeError, OSError) as e:
        return {"error": str(e)}
    out = Path(tempfile.mkstemp(prefix="loadgen-", suffix=".json")[1])
    cmd = [str(RELEASE / "loadgen"), "--mode", scenario["mode"], "--url", server.url,
           "--origin", server.origin, "--token", TOKEN, "--label", column,
           "--server-pid", str(server.proc.pid), "--json", str(out), *scenario["args"], *extra]
    profiler = Profiler(server.proc.pid) if PROFILE and scenario["mode"] == "fanout" else None
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=scenario["budget"],
                              preexec_fn=raise_nofile)
        profile = profiler.finish() if profiler else None
        (log_dir / f"loadgen-{scenario['id']}-{column}.txt").write_text(done.stdout + done.stderr)
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
        return report
    except subprocess.TimeoutExpired:
        return {"error": f"loadgen did not finish within {scenario['budget']} s"}
    finally:
        if profiler:
            profiler.timer.cancel()
        server.stop()
        out.unlink(missing_ok=True)


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


# A fan-out of two connections in two rooms each: does a server answer
# version 2 `join` with `history`? (An earlier ws-chat build may not.)
JOIN_PROBE = {"id": "join-probe", "mode": "fanout", "budget": 60,
              "args": ["--rooms", "2", "--members", "1", "--rooms-per-conn", "2", "--publishers", "1",
                       "--warmup", "0", "--duration", "1", "--timeout", "10", "--late-ms", "500"]}


def join_servers(servers: list[str], log_dir: Path) -> tuple[list[str], str]:
    """The servers a many-rooms scenario can run on, and a note saying which
    were left out and why: the reference and the floor know no `join`; a
    baseline build runs only when a probe shows it answers one."""
    ran, why = [], []
    for name in servers:
        if name in ("reference", "floor"):
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
        "commit": sh("git", "-C", str(ROOT), "rev-parse", "--short", "HEAD") + (" (dirty)" if dirty else ""),
    }


def reference_ready() -> str | None:
    """None when target/reference may be used, else why not (and what to do)."""
    done = subprocess.run([str(ROOT / "scripts" / "reference-ready.sh")], capture_output=True, text=True)
    return None if done.returncode == 0 else done.stderr.strip() or f"scripts/reference-ready.sh exited {done.returncode}"


def chosen_servers() -> list[str]:
    """BENCH_SERVERS, or the default list; the default leaves the reference
    out, saying so, when REFERENCE_DIR does not ask for it."""
    if os.environ.get("BENCH_SERVERS", "").strip():
        return [s.strip() for s in os.environ["BENCH_SERVERS"].split(",") if s.strip()]
    if os.environ.get("REFERENCE_DIR"):
        return ["ws-chat", "reference", "floor"]
    print("bench: the reference chat is left out: REFERENCE_DIR is unset (the reference is not part of "
          "ws-chat; to compare with it, set REFERENCE_DIR to a copy of it and run `make deps` with it set)",
          flush=True)
    return ["ws-chat", "floor"]


def main() -> int:
    servers = chosen_servers()
    only = {s.strip() for s in os.environ.get("BENCH_ONLY", "").split(",") if s.strip()}
    need = [RELEASE / "loadgen"] + [RELEASE / s for s in servers if s in ("ws-chat", "floor")]
    missing = [str(p) for p in need if not p.exists()]
    if "reference" in servers and (why := reference_ready()):
        missing.append(f"the reference chat ({why})")
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
                                               "BENCH_SERVERS", "BENCH_ONLY", "BENCH_BASELINE",
                                               "BENCH_PROFILE")
             if os.environ.get(k)]
    command = " ".join([*knobs, "make bench"])
    results = {"date": today, "quick": QUICK, "command": command, "machine": machine(),
               "servers": servers, "settings": {s: Server.SETTINGS[s] for s in servers},
               "duration_s": DURATION, "warmup_s": WARMUP, "scenarios": []}
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
        if "scale" in scenario:
            bench_scale.run(scenario, entry, servers, log_dir, results, Server, server_counters)
        elif "api" in scenario:
            bench_api.run(scenario, entry, servers, log_dir, results, Server, server_counters)
        elif "variants" in scenario:
            run_variants(scenario, entry, servers, log_dir)
        else:
            for name in run_on:
                print(f"== {scenario['id']} on {name}", flush=True)
                report = run_one(scenario, name, log_dir)
                entry["results"][name] = report
                print("   " + (report.get("error") or "done"), flush=True)
                time.sleep(1)
        results["scenarios"].append(entry)
        # Written after every scenario, so a stopped run still leaves numbers.
        out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
        out.with_suffix(".md").write_text(render_markdown(results))
    print(f"wrote {out}.md and {out}.json (server logs in {log_dir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
