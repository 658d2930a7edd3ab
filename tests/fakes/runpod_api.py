"""A small fake of RunPod's serverless control plane, on loopback, for the real SDK worker loop.

It speaks the worker side of the protocol the ``runpod`` SDK uses:

- ``GET  /v2/{endpoint}/job-take/{pod}?...``      hands out the next queued job, else 204
  (long-polled, like the real one, so the worker does not spin);
- ``GET  /v2/{endpoint}/job-stop/{pod}?...``      ``{"jobsToStop": [...]}``, else 204 (long-polled);
- ``POST /v2/{endpoint}/job-done/{pod}/{id}?...`` a progress update (``status: IN_PROGRESS``) or the result;
- ``POST /v2/{endpoint}/job-stream/{pod}/{id}?...`` a streamed partial output.

Everything received is recorded in arrival order. Point a worker at it with :meth:`FakeRunPod.env`.
:class:`tests.fakes.runpod_rest.FakeServerless` adds the client side (``/run``, ``/status`` ...) on the
same server and queue, through the hooks ``_taken``, ``_posted`` and ``_rest``.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

ENDPOINT = "fake-endpoint"
HOLD_SECONDS = 0.5


@dataclass(frozen=True)
class Record:
    kind: str
    """take, progress, done, stream or stop."""
    job_id: str
    body: Any
    at: float
    query: dict[str, list[str]]


class FakeRunPod:
    def __init__(self, hold_seconds: float = HOLD_SECONDS) -> None:
        self.hold_seconds = hold_seconds
        self.records: list[Record] = []
        self._queue: deque[dict[str, Any]] = deque()
        self._stops: deque[str] = deque()
        self._cond = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-runpod", daemon=True)

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> FakeRunPod:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def env(self, pod_id: str = "fake-pod") -> dict[str, str]:
        """The environment RunPod gives a serverless worker, pointing here (no ping, no fitness checks)."""
        base = f"{self.url}/v2/{ENDPOINT}"
        return {
            "RUNPOD_POD_ID": pod_id,
            "RUNPOD_WEBHOOK_GET_JOB": f"{base}/job-take/$ID?gpu=fake",
            "RUNPOD_WEBHOOK_POST_OUTPUT": f"{base}/job-done/$RUNPOD_POD_ID/$ID?gpu=fake",
            "RUNPOD_WEBHOOK_POST_STREAM": f"{base}/job-stream/$RUNPOD_POD_ID/$ID?gpu=fake",
            "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true",
            "RUNPOD_SKIP_GPU_CHECK": "true",
        }

    # -- steering --------------------------------------------------------------------------
    def enqueue(self, job_input: Any, job_id: str | None = None) -> str:
        job_id = job_id or f"rp-{uuid.uuid4().hex[:12]}"
        with self._cond:
            self._queue.append({"id": job_id, "input": job_input})
            self._cond.notify_all()
        return job_id

    def stop(self, job_id: str) -> None:
        """Ask the worker to stop a job, as RunPod does on cancel or execution timeout."""
        with self._cond:
            self._stops.append(job_id)
            self._cond.notify_all()

    # -- reading ---------------------------------------------------------------------------
    def events(self, job_id: str, kinds: tuple[str, ...] = ("take", "progress", "stream", "done")) -> list[Record]:
        with self._cond:
            return [r for r in self.records if r.job_id == job_id and r.kind in kinds]

    def wait_for(self, job_id: str, kind: str, timeout: float) -> Record:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [r for r in self.records if r.job_id == job_id and r.kind == kind]
                if found:
                    return found[-1]
                left = deadline - time.monotonic()
                if left <= 0:
                    kinds = [r.kind for r in self.records if r.job_id == job_id]
                    raise AssertionError(f"no {kind!r} for {job_id} within {timeout} s (saw {kinds})")
                self._cond.wait(left)

    def result(self, job_id: str, timeout: float) -> Any:
        return self.wait_for(job_id, "done", timeout).body

    # -- called by the HTTP handler ----------------------------------------------------------
    def _record(self, kind: str, job_id: str, body: Any, query: dict[str, list[str]]) -> None:
        with self._cond:
            self.records.append(Record(kind, job_id, body, time.monotonic(), query))
            if kind in ("take", "progress", "stream", "done"):
                self._posted(kind, job_id, body)
            self._cond.notify_all()

    # -- hooks for the client-side API (runpod_rest.py); called with the lock held ------------
    def _posted(self, kind: str, job_id: str, body: Any) -> None:
        """A worker took a job, or posted progress, a stream item or the result."""

    def _after_post(self, kind: str, job_id: str) -> None:
        """After a worker's post is recorded, before it is answered (lock not held)."""

    def _rest(self, method: str, path: list[str], query: dict[str, list[str]], headers: Any,
              body: Any) -> tuple[int, Any, dict[str, str]] | None:
        """The answer to a client-side API call (status, JSON body, headers); None: not one (404)."""
        return None

    def _take(self, query: dict[str, list[str]]) -> dict[str, Any] | None:
        with self._cond:
            self._cond.wait_for(lambda: bool(self._queue), self.hold_seconds)
            if not self._queue:
                return None
            job = self._queue.popleft()
        self._record("take", job["id"], job["input"], query)
        return job

    def _stop_signals(self) -> list[str]:
        with self._cond:
            self._cond.wait_for(lambda: bool(self._stops), self.hold_seconds)
            ids = list(self._stops)
            self._stops.clear()
        for job_id in ids:
            self._record("stop", job_id, None, {})
        return ids


def _handler_for(fake: FakeRunPod) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # quiet test output
            return

        def do_GET(self) -> None:
            url = urlparse(self.path)
            parts = url.path.strip("/").split("/")
            query = parse_qs(url.query)
            if len(parts) >= 3 and parts[2] == "job-take":
                job = fake._take(query)
                self._reply(job)
            elif len(parts) >= 3 and parts[2] == "job-stop":
                ids = fake._stop_signals()
                self._reply({"jobsToStop": ids} if ids else None)
            else:
                self._rest("GET", parts, query, None)

        def do_POST(self) -> None:
            url = urlparse(self.path)
            parts = url.path.strip("/").split("/")
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                self.send_error(400, "body is not JSON")
                return
            if len(parts) == 5 and parts[2] == "job-done":
                kind = "progress" if isinstance(body, dict) and body.get("status") == "IN_PROGRESS" else "done"
            elif len(parts) == 5 and parts[2] == "job-stream":
                kind = "stream"
            else:
                self._rest("POST", parts, parse_qs(url.query), body)
                return
            fake._record(kind, parts[4], body, parse_qs(url.query))
            fake._after_post(kind, parts[4])
            self._reply({})

        def _rest(self, method: str, parts: list[str], query: dict[str, list[str]], body: Any) -> None:
            answer = fake._rest(method, parts, query, self.headers, body)
            if answer is None:
                self.send_error(404)
                return
            code, value, headers = answer
            data = b"" if value is None else json.dumps(value).encode()
            try:
                self.send_response(code)
                for name, header in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, header)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                return  # the client gave up waiting (a hung call): nobody to answer

        def _reply(self, value: Any) -> None:
            if value is None:
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = json.dumps(value).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
