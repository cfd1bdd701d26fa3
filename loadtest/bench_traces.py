"""A trace sink for bench.py: ws-chat exports its sampled spans (OTLP over
HTTP, 1% by default) to this in-process receiver, so the measured CPU includes
the tracing a production deployment pays for. It answers 200 with an empty
body (an empty ExportTraceServiceResponse) and counts requests and bytes.
Standard library only."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class TraceSink:
    """An OTLP/HTTP receiver on 127.0.0.1 that keeps only counts."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = 0
        self.bytes = 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                n = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(n)
                with sink.lock:
                    sink.requests += 1
                    sink.bytes += n
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def take(self) -> dict:
        """The counts since the last call, and reset."""
        with self.lock:
            out = {"requests": self.requests, "bytes": self.bytes}
            self.requests = self.bytes = 0
        return out


_SINK: TraceSink | None = None


def sink() -> TraceSink:
    """The bench run's one sink, started on first use."""
    global _SINK
    if _SINK is None:
        _SINK = TraceSink()
    return _SINK
