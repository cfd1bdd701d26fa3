#!/usr/bin/env python3
"""What tracing costs: server CPU per delivered message with traces off,
on and sampling 0 %, 1 %, and 100 % (for reference).

Each setting runs the same loadgen fan-out scenario against a freshly started
release `ws-chat` (one server at a time: 2 cores), in interleaved rounds so
drift in the machine's load hits every setting alike. Spans go to a small
OTLP/HTTP sink run by this script. Prints the median microseconds of server
CPU per delivered message, and each setting's ratio to "off".

    cargo build --release -p ws-chat -p ws-chat-loadtest
    scripts/trace-cost.py [--rounds 3] [--duration 10] [--scenario small|fanout-200]

Standard library only.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RELEASE = ROOT / "target" / "release"

SETTINGS = {
    "off": {"CHAT__TELEMETRY__TRACES": "off"},
    "on, 0%": {"CHAT__TELEMETRY__TRACES": "otlp", "CHAT__TELEMETRY__SAMPLE_RATIO": "0"},
    "on, 1%": {"CHAT__TELEMETRY__TRACES": "otlp", "CHAT__TELEMETRY__SAMPLE_RATIO": "0.01"},
    "on, 100%": {"CHAT__TELEMETRY__TRACES": "otlp", "CHAT__TELEMETRY__SAMPLE_RATIO": "1"},
}
# rooms, members per room (publishers included), publishers per room, msg/s each
SCENARIOS = {
    "small": ("100", "5", "5", "1.9"),
    "fanout-200": ("1", "200", "40", "1.5"),
}


class Sink(BaseHTTPRequestHandler):
    """Accepts OTLP/HTTP exports and throws them away."""
    received = 0

    def do_POST(self):  # noqa: N802 (http.server's naming)
        length = int(self.headers.get("content-length", "0"))
        self.rfile.read(length)
        Sink.received += length
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def run_once(setting: str, scenario: tuple, duration: float, otlp: str) -> float:
    port, admin = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHAT", "OTEL", "RUST_LOG"))}
    env.update({
        "CHAT__SERVER__HOST": "127.0.0.1", "CHAT__SERVER__ADMIN_HOST": "127.0.0.1",
        "CHAT__SERVER__PORT": str(port), "CHAT__SERVER__ADMIN_PORT": str(admin),
        "CHAT_TOKEN": "dev-token", "CHAT__AUTH__ALLOWED_ORIGINS": f"http://localhost:{port}",
        # The generator shares a few loopback addresses: keep per-IP limits out of the way.
        "CHAT__LIMITS__IP_MESSAGE_BURST": "100000", "CHAT__LIMITS__IP_MESSAGE_REFILL": "1ms",
        "CHAT__LIMITS__IP_CONNECT_BURST": "100000", "CHAT__LIMITS__IP_MAX_CONNECTIONS": "100000",
        "CHAT__TELEMETRY__LOG_FORMAT": "json", "OTEL_EXPORTER_OTLP_ENDPOINT": otlp,
    })
    env.update(SETTINGS[setting])
    server = subprocess.Popen([str(RELEASE / "ws-chat")], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 15
        while not ready(f"http://127.0.0.1:{admin}/readyz"):
            if time.time() > deadline or server.poll() is not None:
                raise SystemExit(f"ws-chat ({setting}) did not become ready")
            time.sleep(0.1)
        rooms, members, publishers, rate = scenario
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            subprocess.run(
                [str(RELEASE / "loadgen"), "--mode", "fanout",
                 "--url", f"ws://127.0.0.1:{port}/chat", "--origin", f"http://localhost:{port}",
                 "--rooms", rooms, "--members", members, "--publishers", publishers,
                 "--rate", rate, "--warmup", "2", "--duration", str(duration),
                 "--server-pid", str(server.pid), "--json", out.name],
                check=True, stdout=subprocess.DEVNULL)
            report = json.loads(Path(out.name).read_text())
        ratio = report.get("delivered_ratio", 0)
        if ratio < 0.99:
            print(f"  warning: {setting}: only {ratio:.3f} of messages delivered", file=sys.stderr)
        return float(report["server_cpu_us_per_delivery"])
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--scenario", choices=sorted(SCENARIOS), default="small")
    args = ap.parse_args()
    for binary in ("ws-chat", "loadgen"):
        if not (RELEASE / binary).exists():
            print(f"missing {RELEASE / binary}: cargo build --release -p ws-chat -p ws-chat-loadtest",
                  file=sys.stderr)
            return 1
    sink = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    otlp = f"http://127.0.0.1:{sink.server_address[1]}"
    scenario = SCENARIOS[args.scenario]
    print(f"scenario {args.scenario}: rooms={scenario[0]} members={scenario[1]} "
          f"publishers={scenario[2]} rate={scenario[3]}/s, {args.duration:g} s measured, "
          f"{args.rounds} rounds")
    samples: dict[str, list[float]] = {s: [] for s in SETTINGS}
    for r in range(args.rounds):
        for setting in SETTINGS:
            us = run_once(setting, scenario, args.duration, otlp)
            samples[setting].append(us)
            print(f"  round {r + 1}  {setting:9}  {us:7.3f} us/delivery", flush=True)
    base = statistics.median(samples["off"])
    print(f"\n{'setting':10} {'median us/delivery':>19} {'vs off':>8}   samples")
    for setting, values in samples.items():
        med = statistics.median(values)
        print(f"{setting:10} {med:19.3f} {med / base:8.3f}   "
              + " ".join(f"{v:.3f}" for v in values))
    print(f"\nOTLP bytes received by the sink: {Sink.received}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
