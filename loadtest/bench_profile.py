"""BENCH_PROFILE=1 for bench.py: `perf record` of a server over the measured
part of a fan-out run, and the shares of its CPU in the kernel and in the
TCP send path, and its heaviest user-space symbols. Standard library only."""
from __future__ import annotations

import subprocess
import tempfile
import threading
from pathlib import Path


# How many user-space symbols the report names, heaviest first.
TOP_USER = 8


class Profiler:
    """`perf record` of one server over the measured part of a fan-out run.

    Starts after the warm-up (plus time to connect) and stops before the
    end, so only steady publishing is sampled."""

    def __init__(self, pid: int, warmup: float, duration: float):
        """`warmup` and `duration`: the run's, in seconds."""
        self.data = Path(tempfile.mkstemp(prefix="perf-", suffix=".data")[1])
        self.proc: subprocess.Popen | None = None
        seconds = max(duration - 4, 2)
        # System-wide (-a), filtered to the server when reporting: with -p,
        # perf spins on poll() once a thread it follows exits (tokio's
        # blocking threads do), taking a core from the server it measures.
        # No build-id collection (-B -N), which would read the binaries at
        # the end, while the server is still being measured.
        cmd = ["perf", "record", "-q", "-a", "-B", "-N", "-F", "999", "-e", "cpu-clock", "-g",
               "-o", str(self.data), "--", "sleep", f"{seconds:g}"]
        self.pid = pid
        self.timer = threading.Timer(warmup + 2, self._start, args=(cmd,))
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
    """Shares of the server's samples, each sample counted once: in the
    kernel or in user space by the function it was taken in (its first
    frame), and under `tcp_sendmsg` when that is anywhere in its stack (the
    TCP send, the loopback and the peer's receive and wake-up, all of which
    the kernel charges to the writer).

    From `perf script`, not `perf report`: `perf report --pid` left some of
    Bun's kernel functions out of its listing (`fdget` among them), and its
    children shares of `tcp_sendmsg` came out above 100 %."""
    done = subprocess.run(["perf", "script", "-i", str(data), "--pid", str(pid), "-F", "ip,sym"],
                          capture_output=True, text=True, timeout=600)
    total = kernel = tcp_send = 0
    user: dict[str, int] = {}
    for block in done.stdout.split("\n\n"):
        frames = [line.split(None, 1) for line in block.strip().splitlines() if line.strip()]
        if not frames:
            continue
        total += 1
        ip, sym = frames[0][0], (frames[0][1] if len(frames[0]) > 1 else "[unknown]")
        if ip.startswith("ffffffff"):
            kernel += 1
        else:
            user[sym] = user.get(sym, 0) + 1
        if any(len(f) > 1 and f[1] == "tcp_sendmsg" for f in frames):
            tcp_send += 1
    if not total:
        return {"error": f"perf script found no samples of pid {pid}"}
    if not tcp_send:
        return {"error": "no tcp_sendmsg samples"}
    heaviest = sorted(user.items(), key=lambda kv: kv[1], reverse=True)[:TOP_USER]
    return {
        "samples": total,
        "kernel_share": round(kernel / total, 4),
        "tcp_send_share": round(tcp_send / total, 4),
        "top_user": [[sym, round(n / total, 4)] for sym, n in heaviest],
    }
