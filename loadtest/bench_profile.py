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
    # Where the user-space rest goes: the heaviest symbols of the server's own.
    user = sorted(((pct(c[0]), " ".join(c[2:])) for c in own if c[1] == "[.]"), reverse=True)
    shares["top_user"] = [[sym, share] for share, sym in user[:TOP_USER]]
    for cols in report("--children", "--sort", "sym"):
        if len(cols) == 4 and cols[2] == "[k]" and cols[3] == "tcp_sendmsg":
            shares["tcp_send_share"] = pct(cols[0])
    return shares if "tcp_send_share" in shares else {"error": "no tcp_sendmsg samples"}
