"""The servers bench.py starts, one at a time: ws-chat (or an earlier build,
"baseline"), the Node reference chat, the Bun peer (loadtest/peers/bun) and
the floor; how each is started and when it is ready; and ws-chat's counters
read after a run. Standard library only."""
from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import bench_traces

ROOT = Path(__file__).resolve().parent.parent
RELEASE = ROOT / "target" / "release"
TOKEN = "dev-token"
NOFILE = 65536
# ws-chat exports its sampled traces to the bench's sink unless BENCH_TRACES=0.
TRACES = os.environ.get("BENCH_TRACES", "1") not in ("", "0")
# The Bun peer and the Bun that scripts/deps/bun.sh installs for it.
BUN_PEER = ROOT / "loadtest" / "peers" / "bun"
BUN = ROOT / "target" / "bun" / "node_modules" / ".bin" / "bun"
BUN_PEER_VERSION = json.loads((BUN_PEER / "package.json").read_text())["devDependencies"]["bun"]


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
                   "CHAT__AUTH__ALLOWED_ORIGINS=http://localhost:<port>; per-IP limits stay on; metrics on; "
                   + ("traces on, 1% sampled (the default ratio), exported over OTLP/HTTP to the bench's own "
                      "sink (OTEL_EXPORTER_OTLP_ENDPOINT, loadtest/bench_traces.py)" if TRACES else
                      "traces off (BENCH_TRACES=0)"),
        "reference": "node server.js, PORT and ALLOWED_ORIGINS only",
        "bun": "loadtest/peers/bun/server.js on Bun " + BUN_PEER_VERSION + " (target/bun), HOST=127.0.0.1, PORT, "
               "ALLOWED_ORIGINS and CHAT_TOKEN=dev-token; protocol version 1, rooms as topics, one "
               "server.publish per room event, perMessageDeflate off, maxPayloadLength 2048, idleTimeout 60 s",
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
            if TRACES:
                # As deployed: spans sampled at the default 1% and exported.
                env["OTEL_EXPORTER_OTLP_ENDPOINT"] = bench_traces.sink().endpoint
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
        elif name == "bun":
            # On 127.0.0.1, as ws-chat: on all addresses its port may clash
            # with the generator's sockets on 127.0.0.2, … (EADDRINUSE).
            env.update({"HOST": "127.0.0.1", "PORT": str(self.port), "ALLOWED_ORIGINS": self.origin,
                        "CHAT_TOKEN": TOKEN})
            cmd = [str(BUN), "server.js"]
            cwd = BUN_PEER
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
            "wschat_outbound_queue_depth_count", "wschat_jwt_failures_total",
            # Why connections went away and joins failed (the scale runs).
            "wschat_room_joins_total", "wschat_connections_closed_total",
            "wschat_broker_errors_total", "wschat_history_reads_shared_total",
            # How often big rooms' fan-out paused to batch (rooms.fanout_pause).
            "wschat_fanout_pauses_total")


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


def bun_ready() -> str | None:
    """Installs the pinned Bun when it is not there (scripts/deps/bun.sh,
    which says what it does); None when it runs, else why not."""
    done = subprocess.run([str(ROOT / "scripts" / "deps" / "bun.sh")])
    return None if done.returncode == 0 else f"scripts/deps/bun.sh exited {done.returncode} (its error is above)"


def reference_ready() -> str | None:
    """None when target/reference may be used, else why not (and what to do)."""
    done = subprocess.run([str(ROOT / "scripts" / "reference-ready.sh")], capture_output=True, text=True)
    return None if done.returncode == 0 else done.stderr.strip() or f"scripts/reference-ready.sh exited {done.returncode}"
