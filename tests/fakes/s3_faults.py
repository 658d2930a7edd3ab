"""A fault-injecting HTTP proxy in front of an S3 endpoint (moto's server).

It answers a configurable fraction of requests itself with the errors S3 sends
when it is unwell (500 InternalError, 503 ServiceUnavailable, 503 SlowDown, with
S3's XML error bodies) and forwards the rest unchanged. Which requests fail is
decided by a seeded random sequence (so a run is reproducible for a given order
of requests) and the kinds of fault take turns; the proxy counts what it did.

    with FaultProxy(upstream="http://127.0.0.1:5000", rate=0.2, seed=7) as proxy:
        settings = settings.with_(s3_endpoint_url=proxy.url)
        ...
        proxy.configure(rate=1.0)
        proxy.fail_from("GET", "/manifest.json")  # all fail from the first read of a manifest on
        proxy.stats()  # {"requests": ..., "forwarded": ..., "faults": {"500": ...}, ...}

Run as a process with ``python -m tests.fakes.s3_faults --upstream URL --rate 0.2``.
"""

from __future__ import annotations

import argparse
import random
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

#: (status, S3 error code, message), as S3 documents them.
FAULTS: dict[str, tuple[int, str, str]] = {
    "500": (500, "InternalError", "We encountered an internal error. Please try again."),
    "503": (503, "ServiceUnavailable", "Please reduce your request rate."),
    "slowdown": (503, "SlowDown", "Please reduce your request rate."),
}
# Connection-level headers belong to one hop, never forwarded.
_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
     "transfer-encoding", "upgrade", "expect", "host", "content-length"}
)


@dataclass
class FaultStats:
    requests: int = 0
    forwarded: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    by_method: Counter[str] = field(default_factory=Counter)
    faulted_paths: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "forwarded": self.forwarded,
            "faults": dict(self.faults),
            "faulted": sum(self.faults.values()),
            "by_method": dict(self.by_method),
            "faulted_paths": list(self.faulted_paths),
        }


class FaultProxy:
    """The proxy, serving from a thread on a free loopback port."""

    def __init__(
        self,
        upstream: str,
        rate: float = 0.0,
        kinds: tuple[str, ...] = ("500", "503", "slowdown"),
        seed: int = 0,
        port: int = 0,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self._lock = threading.Lock()
        self._stats = FaultStats()
        self._trip: tuple[str, str] | None = None
        self.configure(rate=rate, kinds=kinds, seed=seed)
        self._client = httpx.Client(timeout=httpx.Timeout(60.0, connect=5.0), trust_env=False)
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _make_handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def configure(
        self, rate: float | None = None, kinds: tuple[str, ...] | None = None, seed: int | None = None
    ) -> None:
        """Change the fault rate (0 to 1), the mix of faults, or restart the random sequence."""
        with self._lock:
            if rate is not None:
                if not 0.0 <= rate <= 1.0:
                    raise ValueError(f"rate {rate} is not between 0 and 1")
                self.rate = rate
            if kinds is not None:
                unknown = set(kinds) - set(FAULTS)
                if not kinds or unknown:
                    raise ValueError(f"fault kinds are {sorted(FAULTS)}, not {sorted(unknown) or 'none'}")
                self.kinds = tuple(kinds)
            if seed is not None:
                self._random = random.Random(seed)

    def fail_from(self, method: str, path_suffix: str) -> None:
        """From the first ``method`` request whose path ends with ``path_suffix`` (that one included), fail
        every request, with the stats started afresh: storage dies at a chosen step of a job, not at
        whatever moment a test happens to notice that step."""
        with self._lock:
            self._trip = (method.upper(), path_suffix)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return self._stats.to_json()

    def reset_stats(self) -> None:
        with self._lock:
            self._stats = FaultStats()

    def decide(self, method: str, path: str) -> str | None:
        """Count the request; the fault to answer it with, or None to forward it."""
        with self._lock:
            if self._trip is not None and method == self._trip[0] and path.split("?")[0].endswith(self._trip[1]):
                self._trip = None
                self.rate = 1.0
                self._stats = FaultStats()
            self._stats.requests += 1
            self._stats.by_method[method] += 1
            if self._random.random() < self.rate:
                # The kinds take turns, so every kind shows up once there have been a few faults.
                kind = self.kinds[sum(self._stats.faults.values()) % len(self.kinds)]
                self._stats.faults[kind] += 1
                self._stats.faulted_paths.append(f"{method} {path}")
                return kind
            self._stats.forwarded += 1
            return None

    def forward(
        self, method: str, path: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Send the request upstream as it came; the answer as sent (status, headers, raw body)."""
        kept = [(k, v) for k, v in headers if k.lower() not in _HOP]
        request = self._client.build_request(method, f"{self.upstream}{path}", headers=kept, content=body)
        response = self._client.send(request, stream=True)
        try:
            raw = b"".join(response.iter_raw())  # not decoded: the bytes upstream sent
        finally:
            response.close()
        return response.status_code, list(response.headers.multi_items()), raw

    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._server.serve_forever, name="s3-fault-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()  # waits for serve_forever, so only once it was started
            self._thread.join(10)
            self._thread = None
        self._server.server_close()
        self._client.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def error_body(code: str, message: str, resource: str) -> bytes:
    request_id = uuid.uuid4().hex[:16].upper()
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message><Resource>{_xml(resource)}</Resource>"
        f"<RequestId>{request_id}</RequestId></Error>"
    ).encode()


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _make_handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: botocore pools its connections

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                return self._chunked()
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _chunked(self) -> bytes:
            body = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return bytes(body)
                body += self.rfile.read(size)
                self.rfile.readline()

        def _handle(self) -> None:
            # Read the whole request first, whatever the answer, so the connection stays usable.
            body = self._body()
            kind = proxy.decide(self.command, self.path)
            if kind is not None:
                self._fault(kind)
                return
            try:
                status, upstream_headers, raw = proxy.forward(self.command, self.path, list(self.headers.items()), body)
            except httpx.HTTPError as exc:
                self._send(502, [("Content-Type", "text/plain")], f"upstream: {type(exc).__name__}".encode())
                return
            headers = [(k, v) for k, v in upstream_headers if k.lower() not in _HOP]
            if self.command == "HEAD":
                # A HEAD answer carries the object's length but no body.
                length = next((v for k, v in upstream_headers if k.lower() == "content-length"), "0")
                self._send(status, headers, b"", length)
            else:
                self._send(status, headers, raw)

        def _fault(self, kind: str) -> None:
            status, code, message = FAULTS[kind]
            body = b"" if self.command == "HEAD" else error_body(code, message, self.path.split("?")[0])
            self._send(status, [("Content-Type", "application/xml"), ("x-amz-request-id", "FAULT")], body)

        def _send(self, status: int, headers: list[tuple[str, str]], body: bytes, length: str | None = None) -> None:
            self.send_response(status)
            for key, value in headers:
                if key.lower() not in ("date", "server"):  # send_response writes its own
                    self.send_header(key, value)
            self.send_header("Content-Length", length if length is not None else str(len(body)))
            self.end_headers()
            if body and self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--rate", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    proxy = FaultProxy(args.upstream, rate=args.rate, seed=args.seed, port=args.port)
    print(proxy.url, flush=True)
    try:
        proxy._server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
