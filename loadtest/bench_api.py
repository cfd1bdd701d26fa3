"""Server API publishes for bench.py: requests/s, call latency and delivery
latency (API call start to receipt on a watching WebSocket client).

api-publish: one ws-chat process, memory broker; calls and watchers on it.
api-publish-redis: two ws-chat processes on one redis-server (a free port,
no persistence); calls to replica A's admin listener, watchers on replica
B, so every message crosses Redis. Server CPU is both replicas' plus
redis-server's. Each scenario runs twice: at a fixed rate (latency at a
stated load) and closed-loop (as many calls as the callers get answered:
the most the machine gives, generator included). ws-chat only.
Also the throwaway Redis servers the scale scenarios use: `Redis` (one
redis-server) and `RedisCluster` (3 masters, no replicas). Standard
library only.
"""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

RELEASE = Path(__file__).resolve().parent.parent / "target" / "release"
KEY = "bench-api-key-0123456789abcdef0123456789"
RATE, CALLERS, WATCHERS = 2000, 16, 100
COLUMNS = {f"{RATE:,}/s": ["--rate", str(RATE)], "closed loop": ["--rate", "0"]}


def scenarios(quick: bool) -> list[dict]:
    warmup, duration = (1, 3) if quick else (3, 10)
    args = ["--watchers", str(WATCHERS), "--callers", str(CALLERS),
            "--warmup", str(warmup), "--duration", str(duration), "--timeout", "30"]
    load = (f"{WATCHERS} watchers in one room, {CALLERS} callers on keep-alive connections: "
            f"{RATE:,} calls/s, then closed loop")
    return [
        {"id": "api-publish", "mode": "api-publish", "api": "memory", "args": args,
         "title": f"Server API publishes, one process (memory broker): {load}",
         "budget": warmup + duration + 60},
        {"id": "api-publish-redis", "mode": "api-publish", "api": "redis", "args": args,
         "title": f"Server API publishes, two processes on one Redis (calls to A, watchers on B): {load}",
         "budget": warmup + duration + 60},
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Redis:
    """A throwaway redis-server on a free port, no persistence."""

    def __init__(self, log_dir: Path):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="redis-", dir=log_dir)
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir],
            stdout=open(log_dir / "redis.log", "ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while not self._pong():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server on {self.port} did not answer PING")
            time.sleep(0.1)

    def _pong(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    @property
    def pids(self) -> dict:
        """The process to measure, under the name the reports use."""
        return {"redis-server": self.proc.pid}

    @property
    def broker_env(self) -> dict:
        return {"CHAT__BROKER__KIND": "redis", "CHAT__BROKER__REDIS_URL": self.url}

    def commands(self) -> dict:
        """total_commands_processed, keyed as `pids`."""
        return {"redis-server": commands_processed(self.port)}

    def stop(self) -> None:
        halt(self.proc)


def halt(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def resp(port: int, *args: str, timeout: float = 2.0) -> str:
    """One command to the Redis on `port`; a simple, integer or bulk reply
    as text (an error reply raises OSError)."""
    msg = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(msg.encode())
        buf = b""
        while b"\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                raise OSError(f"redis on {port} closed the connection")
            buf += chunk
        head, rest = buf.split(b"\r\n", 1)
        if head.startswith(b"-"):
            raise OSError(f"redis on {port}: {head[1:].decode()}")
        if not head.startswith(b"$"):
            return head[1:].decode()
        n = int(head[1:])
        while len(rest) < n + 2:
            chunk = s.recv(65536)
            if not chunk:
                raise OSError(f"redis on {port} closed the connection")
            rest += chunk
        return rest[:n].decode()


def commands_processed(port: int) -> int | None:
    try:
        info = resp(port, "INFO", "stats")
    except OSError:
        return None
    line = next((x for x in info.splitlines() if x.startswith("total_commands_processed:")), None)
    return int(line.split(":")[1]) if line else None


def cluster_port(taken: list[int]) -> int:
    """A free port whose cluster bus port (+10000) is free too."""
    for _ in range(200):
        port = free_port()
        if port + 10000 > 65535 or port in taken:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair (port, port + 10000) for a cluster node")


class RedisCluster:
    """A throwaway Redis Cluster: 3 masters and no replicas (the point is
    sharding: each master owns a third of the slots, so of the rooms; there
    is no failover to measure), on free ports, no persistence, formed with
    `redis-cli --cluster create`. Needs redis-server and redis-cli."""

    def __init__(self, log_dir: Path, masters: int = 3):
        missing = [t for t in ("redis-server", "redis-cli") if not shutil.which(t)]
        if missing:
            raise RuntimeError(f"{' and '.join(missing)} not on PATH: the cluster needs both "
                               "(redis-cli forms it with --cluster create)")
        self.dir = tempfile.mkdtemp(prefix="redis-cluster-", dir=log_dir)
        self.ports: list[int] = []
        self.procs: list[subprocess.Popen] = []
        log = open(log_dir / "redis-cluster.log", "ab")
        try:
            for _ in range(masters):
                port = cluster_port(self.ports)
                self.ports.append(port)
                self.procs.append(subprocess.Popen(
                    ["redis-server", "--port", str(port), "--cluster-enabled", "yes",
                     "--cluster-config-file", f"{self.dir}/nodes-{port}.conf",
                     "--cluster-node-timeout", "5000", "--save", "", "--appendonly", "no",
                     "--bind", "127.0.0.1", "--repl-diskless-sync-delay", "0", "--dir", self.dir],
                    stdout=log, stderr=subprocess.STDOUT))
            self._wait("PING", lambda reply: reply == "PONG", 10)
            made = subprocess.run(["redis-cli", "--cluster", "create",
                                   *[f"127.0.0.1:{p}" for p in self.ports],
                                   "--cluster-replicas", "0", "--cluster-yes"],
                                  capture_output=True, text=True, timeout=60)
            (log_dir / "redis-cluster-create.txt").write_text(made.stdout + made.stderr)
            if made.returncode != 0:
                raise RuntimeError(f"redis-cli --cluster create exited {made.returncode}: "
                                   f"{(made.stdout + made.stderr).strip()[-300:]}")
            self._wait("CLUSTER INFO", lambda reply: "cluster_state:ok" in reply, 30)
        except (RuntimeError, OSError, subprocess.TimeoutExpired):
            self.stop()
            raise

    def _wait(self, command: str, good, seconds: float) -> None:
        """Until every node answers `command` as `good` says."""
        deadline = time.monotonic() + seconds
        for port, proc in zip(self.ports, self.procs):
            while True:
                try:
                    if good(resp(port, *command.split())):
                        break
                except OSError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"cluster node {port}: no good answer to {command} in {seconds:g} s")
                time.sleep(0.1)

    @property
    def urls(self) -> list[str]:
        return [f"redis://127.0.0.1:{p}" for p in self.ports]

    @property
    def pids(self) -> dict:
        """Per node: `redis-server :<port>`."""
        return {f"redis-server :{port}": proc.pid for port, proc in zip(self.ports, self.procs)}

    @property
    def broker_env(self) -> dict:
        return {"CHAT__BROKER__KIND": "redis", "CHAT__BROKER__REDIS_MODE": "cluster",
                "CHAT__BROKER__REDIS_URLS": ",".join(self.urls)}

    def commands(self) -> dict:
        return {f"redis-server :{p}": commands_processed(p) for p in self.ports}

    def rooms_per_node(self, rooms: list[str]) -> dict:
        """How many of `rooms` (hash tag `{room}`) each node owns."""
        owned = {}
        for port in self.ports:
            me = next(x for x in resp(port, "CLUSTER", "NODES").splitlines() if "myself" in x)
            owned[port] = [tuple(int(n) for n in (r.split("-") * 2)[:2]) for r in me.split()[8:]
                           if not r.startswith("[")]
        count = {f"redis-server :{p}": 0 for p in self.ports}
        for room in rooms:
            slot = int(resp(self.ports[0], "CLUSTER", "KEYSLOT", "{" + room + "}"))
            port = next(p for p, ranges in owned.items() if any(a <= slot <= b for a, b in ranges))
            count[f"redis-server :{port}"] += 1
        return count

    def stop(self) -> None:
        for proc in self.procs:
            halt(proc)


def run_column(scenario: dict, column: str, log_dir: Path, config: Path, server_cls, counters) -> dict:
    """One loadgen run on fresh processes (and a fresh Redis)."""
    redis, started = None, []
    out = Path(tempfile.mkstemp(prefix="loadgen-", suffix=".json")[1])
    try:
        if scenario["api"] == "redis":
            redis = Redis(log_dir)
            env = {"CHAT__BROKER__KIND": "redis", "CHAT__BROKER__REDIS_URL": redis.url}
            started.append(server_cls("ws-chat", log_dir, config, env, "-api-a"))
            started.append(server_cls("ws-chat", log_dir, config, env, "-api-b"))
        else:
            started.append(server_cls("ws-chat", log_dir, config, None, "-api"))
        caller, watched = started[0], started[-1]
        extra = [p for s in started[1:] for p in ("--extra-pid", str(s.proc.pid))]
        if redis:
            extra += ["--extra-pid", str(redis.proc.pid)]
        cmd = [str(RELEASE / "loadgen"), "--mode", "api-publish", "--url", watched.url,
               "--origin", watched.origin, "--token", "dev-token", "--label", column,
               "--api-url", caller.admin_url, "--api-key", KEY,
               "--server-pid", str(caller.proc.pid), *extra, "--json", str(out),
               *scenario["args"], *COLUMNS[column]]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=scenario["budget"])
        name = f"loadgen-{scenario['id']}-{column.replace('/', '').replace(' ', '-')}.txt"
        (log_dir / name).write_text(done.stdout + done.stderr)
        if done.returncode != 0 or out.stat().st_size == 0:
            return {"error": f"loadgen exited {done.returncode}: {done.stderr.strip()[-300:]}"}
        report = json.loads(out.read_text())
        if any(s.proc.poll() is not None for s in started):
            report["server_died"] = True
        found = {}
        for tag, s in zip("AB", started):
            for k, v in counters(s.metrics_url).items():
                if k.startswith(("wschat_drops_total", "wschat_slow_consumer_closes_total")):
                    found[f"{tag}: {k}" if len(started) > 1 else k] = v
        if found:
            report["server_counters"] = found
        return report
    except subprocess.TimeoutExpired:
        return {"error": f"loadgen did not finish within {scenario['budget']} s"}
    except (RuntimeError, OSError) as e:
        return {"error": str(e)}
    finally:
        for s in started:
            s.stop()
        if redis:
            redis.stop()
        out.unlink(missing_ok=True)


def run(scenario: dict, entry: dict, servers: list[str], log_dir: Path, results: dict,
        server_cls, counters) -> None:
    """Fills `entry` (bench.py's scenario entry): a column per load."""
    entry["columns"] = list(COLUMNS)
    if "ws-chat" not in servers:
        entry["note"] = "Not run: this scenario runs ws-chat only, and BENCH_SERVERS leaves it out."
        return
    if scenario["api"] == "redis" and not shutil.which("redis-server"):
        entry["note"] = "Not run: no redis-server on PATH."
        return
    config = log_dir / "api-bench.toml"
    config.write_text(f'[[api.keys]]\nname = "bench"\nscopes = ["publish"]\nkey = "{KEY}"\n')
    for column in COLUMNS:
        print(f"== {scenario['id']} on ws-chat, {column}", flush=True)
        report = run_column(scenario, column, log_dir, config, server_cls, counters)
        entry["results"][column] = report
        print("   " + (report.get("error") or "done"), flush=True)
        time.sleep(1)
    entry["note"] = (
        "`POST /api/v1/rooms/api-bench/messages` on the admin listener (key from `--config`, "
        f"scope publish); the columns add `--rate {RATE}` and `--rate 0` (closed loop). "
        "Body `{\"text\":\"lg|api|<caller>|<seq>|<send µs>\"}`; every answer but 201 "
        "is an error. API latency: request written to response read. Delivery latency: the send "
        "time in the text to each watcher's receipt. Server CPU per request: "
        + ("both replicas' and redis-server's CPU" if scenario["api"] == "redis" else "the process's CPU")
        + " over the measured window, divided by the calls answered 201.")
    memory = next((e for e in results["scenarios"] if e["id"] == "api-publish"), None)
    if scenario["api"] == "redis" and memory:
        entry["compare"] = {"label": "÷ memory", "results": memory["results"]}
