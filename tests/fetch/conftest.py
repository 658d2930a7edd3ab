"""A real HTTP origin on loopback for the fetcher, and a canary that counts connections."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

SMALL = b"RIFF" + bytes(range(256)) * 40
BLOCK = b"\0" * 65536
HANDLER_LIMIT = 10.0  # no handler outlives this, whatever the client does


@dataclass
class OriginState:
    hits: Counter[str] = field(default_factory=Counter)
    sent: dict[str, int] = field(default_factory=dict)
    done: dict[str, threading.Event] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def finished(self, route: str) -> threading.Event:
        with self.lock:
            return self.done.setdefault(route, threading.Event())


class _Handler(BaseHTTPRequestHandler):
    state: OriginState

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        route = url.path.strip("/").split("/")[0]
        self.state.hits[url.path] += 1
        getattr(self, f"route_{route.replace('-', '_')}", self.route_missing)(url.path, query)

    # -- routes ----------------------------------------------------------------

    def route_small(self, path: str, query: dict[str, str]) -> None:
        self._send(200, SMALL, {"Content-Type": "audio/wav"})

    def route_echo_host(self, path: str, query: dict[str, str]) -> None:
        self._send(200, (self.headers.get("Host") or "").encode())

    def route_status(self, path: str, query: dict[str, str]) -> None:
        self._send(int(path.rsplit("/", 1)[1]), b"status")

    def route_redirect(self, path: str, query: dict[str, str]) -> None:
        self._send(int(query.get("status", "302")), b"", {"Location": query["to"]})

    def route_loop(self, path: str, query: dict[str, str]) -> None:
        self._send(302, b"", {"Location": "/loop"})

    def route_chain(self, path: str, query: dict[str, str]) -> None:
        left = int(path.rsplit("/", 1)[1])
        if left == 0:
            self.route_small(path, query)
        else:
            self._send(307, b"", {"Location": f"/chain/{left - 1}"})

    def route_gzip(self, path: str, query: dict[str, str]) -> None:
        self._send(200, b"\x1f\x8b not really", {"Content-Encoding": "gzip"})

    def route_big(self, path: str, query: dict[str, str]) -> None:
        """Stream ``size`` bytes, framed by length, chunks or connection close."""
        size, framing = int(query["size"]), query.get("framing", "close")
        if framing == "chunked":
            self.protocol_version = "HTTP/1.1"
        self.send_response(200)
        if framing == "length":
            self.send_header("Content-Length", str(size))
        if framing == "chunked":
            self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        sent = 0
        try:
            while sent < size and not self.state.stop.is_set():
                block = BLOCK[: size - sent]
                if framing == "chunked":
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(block), block))
                else:
                    self.wfile.write(block)
                sent += len(block)
            if framing == "chunked":
                self.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass  # the client hung up: that is the point
        finally:
            self.state.sent[path] = sent
            self.state.finished(path).set()
            self.close_connection = True

    def route_slow(self, path: str, query: dict[str, str]) -> None:
        """Headers at once, then ``every`` seconds a few bytes; stall after ``for`` seconds."""
        every, trickle_for = float(query.get("every", "0.1")), float(query.get("for", "1e9"))
        self.send_response(200)
        self.send_header("Content-Length", "1000000")
        self.end_headers()
        started = time.monotonic()
        try:
            while time.monotonic() - started < min(trickle_for, HANDLER_LIMIT):
                self.wfile.write(b"xxxxxxxx")
                self.wfile.flush()
                if self.state.stop.wait(every):
                    return
            self.state.stop.wait(HANDLER_LIMIT)  # stall
        except OSError:
            pass
        finally:
            self.close_connection = True

    def route_hang(self, path: str, query: dict[str, str]) -> None:
        self.state.stop.wait(HANDLER_LIMIT)
        self.close_connection = True

    def route_missing(self, path: str, query: dict[str, str]) -> None:
        self._send(404, b"no route")

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@dataclass
class Origin:
    port: int
    state: OriginState

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # hanging handlers end on state.stop, not on close


@pytest.fixture
def origin() -> Iterator[Origin]:
    state = OriginState()
    handler = type("Handler", (_Handler,), {"state": state})
    server = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield Origin(port=int(server.server_address[1]), state=state)
    finally:
        state.stop.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass
class Canary:
    """Listens on every loopback address (dual stack) and counts connections."""

    port: int
    connections: int = 0


@pytest.fixture
def canary() -> Iterator[Canary]:
    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("::", 0))
    sock.listen(16)
    sock.settimeout(0.05)
    bird = Canary(port=int(sock.getsockname()[1]))
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            bird.connections += 1
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield bird
    finally:
        stop.set()
        thread.join(timeout=5)
        sock.close()
