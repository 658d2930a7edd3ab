"""A fake of RunPod's client-side serverless API, on loopback, over the worker-side fake's queue.

:class:`FakeServerless` serves what a backend calls, with RunPod's JSON shapes and status
transitions (IN_QUEUE -> IN_PROGRESS -> COMPLETED | FAILED | CANCELLED | TIMED_OUT):

- ``POST /v2/{endpoint}/run``, ``/runsync?wait=ms``, ``GET /status/{id}``, ``/stream/{id}``,
  ``POST /cancel/{id}``, ``GET /health``; ``Authorization: Bearer <api_key>`` is checked (401),
  the endpoint id too (404); a job id it never issued is a 404.

Jobs are run either by in-process fake workers (``workers=N`` threads calling ``work(job, report)``,
each paying ``cold_start`` seconds before its first job; a cold worker starts only for queued jobs
no starting worker will take, as RunPod scales on queue depth) or by a real
``python -m narrator.runpod_handler`` through the worker-side protocol of :class:`FakeRunPod`
(``env()``): its job-done progress posts become ``/status`` output, its job-stream posts ``/stream``
items, and ``/cancel`` a job-stop. Both paths record the same events (``records``).

Dispatch is by condition variable; ``/status`` is a dictionary look-up under one lock.
Faults: :meth:`fail_next` (the next N calls answer 429 or 5xx), :meth:`hang_next` (the next N calls
get no answer until :meth:`release`), ``queue_delay`` (seconds before a job can be taken), a
``work`` that raises (FAILED), ``policy.executionTimeout`` (TIMED_OUT).
"""

from __future__ import annotations

import base64
import inspect
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.runpod_api import ENDPOINT, HOLD_SECONDS, FakeRunPod

API_KEY = "fake-runpod-key"
TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"})
RUNSYNC_DEFAULT_MS = 90_000
HANG_MAX = 30.0
LOCKSTEP_MAX = 5.0


class Report:
    """What ``work`` is given to speak with: ``report(progress)``, ``report.stream(item)``, ``report.cancelled``."""

    def __init__(self, fake: FakeServerless, job_id: str) -> None:
        self._fake = fake
        self.job_id = job_id

    def __call__(self, progress: Any) -> None:
        self._fake._record("progress", self.job_id, {"status": "IN_PROGRESS", "output": progress}, {})
        self._fake._after_post("progress", self.job_id)

    def stream(self, item: Any) -> None:
        self._fake._record("stream", self.job_id, {"output": item}, {})

    def hold(self, gate: threading.Event, timeout: float = 60.0) -> bool:
        """Wait until ``gate`` is opened (:meth:`FakeServerless.open`): True; or the job is cancelled: False."""
        cancelled = self.cancelled
        with self._fake._cond:
            self._fake._cond.wait_for(lambda: gate.is_set() or cancelled.is_set(), timeout)
        return gate.is_set() and not cancelled.is_set()

    @property
    def cancelled(self) -> threading.Event:
        """Set when the job is cancelled or timed out: a ``work`` that blocks should wait on it."""
        return self._fake.cancel_event(self.job_id)


Work = Callable[[dict[str, Any], Report], Any]
"""``work({"id", "input"}, report)``: the return value is the output (a generator: each item
streamed, the list the output); an exception or ``{"error": ...}`` fails the job."""


@dataclass
class FakeJob:
    id: str
    input: Any
    policy: dict[str, Any]
    submitted: float
    status: str = "IN_QUEUE"
    output: Any = None
    error: str | None = None
    started: float | None = None
    finished: float | None = None
    stream: list[Any] = field(default_factory=list)
    read: int = 0
    """Stream items already handed out by /stream."""
    history: list[str] = field(default_factory=lambda: ["IN_QUEUE"])
    served: list[dict[str, Any]] = field(default_factory=list)
    """Every /status answer given, in order."""
    cancel: threading.Event = field(default_factory=threading.Event)

    def answer(self, now: float) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id, "status": self.status}
        if self.started is not None:
            body["delayTime"] = int((self.started - self.submitted) * 1000)
        if self.finished is not None and self.started is not None:
            body["executionTime"] = int((self.finished - self.started) * 1000)
        if self.output is not None:
            body["output"] = self.output
        if self.error is not None:
            body["error"] = self.error
        return body


@dataclass
class Fault:
    remaining: int
    status: int = 500
    retry_after: str | None = None
    route: str | None = None
    hang: bool = False


@dataclass(frozen=True)
class RestCall:
    method: str
    route: str
    """run, runsync, status, stream, cancel, health."""
    status: int


@dataclass
class _Worker:
    name: str
    state: str = "cold"
    """cold (never started), initializing, idle, running."""


class FakeServerless(FakeRunPod):
    def __init__(
        self,
        *,
        api_key: str = API_KEY,
        endpoints: Iterable[str] = (ENDPOINT,),
        workers: int = 0,
        cold_start: float = 0.0,
        work: Work | None = None,
        queue_delay: float = 0.0,
        hold_seconds: float = HOLD_SECONDS,
        lockstep: bool = False,
    ) -> None:
        """``lockstep``: a worker's progress post is answered only once a /status call has shown it
        (or after 5 s), so a polling client sees every update, whatever the machine's speed."""
        if workers and work is None:
            raise ValueError("in-process workers need a work callable")
        super().__init__(hold_seconds)
        self.api_key = api_key
        self.endpoints = frozenset(endpoints)
        self.cold_start = cold_start
        self._queue_delay = queue_delay
        self.work = work
        self.lockstep = lockstep
        self.jobs: dict[str, FakeJob] = {}
        self.cancels: list[str] = []
        self.calls: list[RestCall] = []
        self._faults: list[Fault] = []
        self._released = threading.Event()
        self._closing = threading.Event()
        self._workers = [_Worker(f"fake-worker-{i}") for i in range(workers)]
        self._threads = [threading.Thread(target=self._serve_jobs, args=(w,), name=w.name, daemon=True)
                         for w in self._workers]
        # serve_forever checks for shutdown every poll_interval: 0.5 s by default, per fake, per test.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="fake-runpod-rest", daemon=True)

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> FakeServerless:
        super().__enter__()
        for thread in self._threads:
            thread.start()
        return self

    def close(self) -> None:
        with self._cond:
            self._closing.set()
            for job in self.jobs.values():
                job.cancel.set()  # a work blocked on its job's event lets go
            self._cond.notify_all()
        self._released.set()
        for thread in self._threads:
            thread.join(10)
        super().close()

    @property
    def queue_delay(self) -> float:
        """Seconds a job waits before any worker may take it."""
        return self._queue_delay

    @queue_delay.setter
    def queue_delay(self, seconds: float) -> None:
        with self._cond:  # workers waiting out the old delay wake and look again
            self._queue_delay = seconds
            self._cond.notify_all()

    @property
    def api_url(self) -> str:
        return f"{self.url}/v2"

    # -- steering ------------------------------------------------------------------------------
    def fail_next(self, count: int, status: int = 500, *, retry_after: str | None = None,
                  route: str | None = None) -> None:
        """The next ``count`` client calls (to ``route`` only, when given) answer ``status``."""
        with self._cond:
            self._faults.append(Fault(count, status, retry_after, route))

    def hang_next(self, count: int, route: str | None = None) -> None:
        """The next ``count`` client calls get no answer until :meth:`release` (or 30 s)."""
        with self._cond:
            self._released.clear()
            self._faults.append(Fault(count, route=route, hang=True))

    def release(self) -> None:
        self._released.set()

    def open(self, gate: threading.Event) -> None:
        """Let every job held on ``gate`` (:meth:`Report.hold`) go on."""
        with self._cond:
            gate.set()
            self._cond.notify_all()

    def submit(self, job_input: Any, policy: dict[str, Any] | None = None) -> str:
        """Queue a job as ``/run`` does."""
        job_id = f"{uuid.uuid4()}-u1"
        with self._cond:
            self.jobs[job_id] = FakeJob(job_id, job_input, dict(policy or {}), time.monotonic())
            self._queue.append({"id": job_id, "input": job_input})
            self._cond.notify_all()
        return job_id

    def enqueue(self, job_input: Any, job_id: str | None = None) -> str:
        job_id = job_id or f"rp-{uuid.uuid4().hex[:12]}"
        with self._cond:
            self.jobs[job_id] = FakeJob(job_id, job_input, {}, time.monotonic())
        return super().enqueue(job_input, job_id)

    # -- reading -------------------------------------------------------------------------------
    def job(self, job_id: str) -> FakeJob:
        with self._cond:
            return self.jobs[job_id]

    def cancel_event(self, job_id: str) -> threading.Event:
        with self._cond:
            return self.jobs[job_id].cancel

    def running(self) -> list[str]:
        """Jobs queued or running: after a test, none should be left."""
        with self._cond:
            return [j.id for j in self.jobs.values() if j.status not in TERMINAL]

    def wait_status(self, job_id: str, statuses: Iterable[str], timeout: float = 30.0) -> FakeJob:
        wanted = set(statuses)
        with self._cond:
            if not self._cond.wait_for(lambda: job_id in self.jobs and self.jobs[job_id].status in wanted, timeout):
                seen = self.jobs[job_id].history if job_id in self.jobs else "never submitted"
                raise AssertionError(f"job {job_id} not {sorted(wanted)} within {timeout} s (saw {seen})")
            return self.jobs[job_id]

    def wait_served(self, job_id: str, predicate: Callable[[dict[str, Any]], bool], timeout: float = 30.0) -> None:
        """Until a /status answer about the job satisfies ``predicate``: the client has seen it."""
        with self._cond:
            if not self._cond.wait_for(lambda: any(predicate(a) for a in self.jobs[job_id].served), timeout):
                raise AssertionError(f"no /status answer for {job_id} as wanted within {timeout} s")

    def progress_seen(self, job_id: str, chunks_done: int) -> None:
        """Until the client has been shown this progress (a ``NarratorWork.seen``)."""
        self.wait_served(job_id, lambda a: isinstance(a.get("output"), dict)
                         and a["output"].get("chunks_done") == chunks_done)

    def wait_calls(self, route: str, count: int, timeout: float = 30.0) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: sum(c.route == route for c in self.calls) >= count, timeout):
                raise AssertionError(f"fewer than {count} /{route} calls within {timeout} s")

    def wait_submitted(self, timeout: float = 30.0) -> FakeJob:
        """The first job submitted (for tests that do not see the id)."""
        with self._cond:
            if not self._cond.wait_for(lambda: bool(self.jobs), timeout):
                raise AssertionError(f"no job submitted within {timeout} s")
            return next(iter(self.jobs.values()))

    def count(self, route: str, status: int | None = None) -> int:
        with self._cond:
            return sum(1 for c in self.calls if c.route == route and (status is None or c.status == status))

    def _after_post(self, kind: str, job_id: str) -> None:
        if not self.lockstep or kind != "progress":
            return
        with self._cond:
            job = self.jobs.get(job_id)
            if job is None:
                return
            shown = job.output
            self._cond.wait_for(lambda: job.status in TERMINAL or any(a.get("output") is shown for a in job.served),
                                LOCKSTEP_MAX)

    # -- job state (lock held) ------------------------------------------------------------------
    def _posted(self, kind: str, job_id: str, body: Any) -> None:
        job = self.jobs.get(job_id)
        if job is None or job.status in TERMINAL:
            return  # a job RunPod ended (cancelled, timed out) ignores what its worker still says
        if kind == "take":
            self._set(job, "IN_PROGRESS")
            job.started = time.monotonic()
            self._arm_timeout(job)
        elif kind == "progress":
            job.output = body.get("output") if isinstance(body, dict) else body
        elif kind == "stream":
            job.stream.append(body.get("output") if isinstance(body, dict) else body)
        elif isinstance(body, dict) and body.get("error") is not None:
            job.error = str(body["error"])
            job.output = None
            self._end(job, "FAILED")
        else:
            job.output = body.get("output") if isinstance(body, dict) else body
            self._end(job, "COMPLETED")

    def _set(self, job: FakeJob, status: str) -> None:
        job.status = status
        job.history.append(status)
        self._cond.notify_all()

    def _end(self, job: FakeJob, status: str) -> None:
        job.finished = time.monotonic()
        self._set(job, status)
        if status in ("CANCELLED", "TIMED_OUT"):
            job.cancel.set()

    def _arm_timeout(self, job: FakeJob) -> None:
        limit = job.policy.get("executionTimeout")
        if isinstance(limit, int | float) and limit > 0:
            timer = threading.Timer(limit / 1000, self._time_out, args=(job.id,))
            timer.daemon = True
            timer.start()

    def _time_out(self, job_id: str) -> None:
        with self._cond:
            job = self.jobs[job_id]
            if job.status not in TERMINAL:
                self._end(job, "TIMED_OUT")
                self._stops.append(job_id)  # a real worker is told to stop, as RunPod does

    def _cancel(self, job: FakeJob) -> None:
        self.cancels.append(job.id)
        if job.status in TERMINAL:
            return
        taken = job.status == "IN_PROGRESS"
        queued = [q for q in self._queue if q["id"] != job.id]
        self._queue.clear()
        self._queue.extend(queued)
        self._end(job, "CANCELLED")
        if taken:
            self._stops.append(job.id)  # a real worker's job-stop; in-process ones see job.cancel

    # -- the queue -------------------------------------------------------------------------------
    def _available(self, now: float) -> list[dict[str, Any]]:
        return [q for q in self._queue if now >= self.jobs[q["id"]].submitted + self.queue_delay]

    def _next_ready_in(self, now: float) -> float | None:
        waits = [self.jobs[q["id"]].submitted + self.queue_delay - now for q in self._queue]
        return max(0.0, min(waits)) if waits else None

    def _pop(self, now: float) -> dict[str, Any] | None:
        ready = self._available(now)
        if not ready:
            return None
        self._queue.remove(ready[0])
        return ready[0]

    def _take(self, query: dict[str, list[str]]) -> dict[str, Any] | None:
        with self._cond:
            self._cond.wait_for(lambda: bool(self._available(time.monotonic())), self.hold_seconds)
            job = self._pop(time.monotonic())
        if job is not None:
            self._record("take", job["id"], job["input"], query)
        return job

    # -- in-process workers ---------------------------------------------------------------------
    def _wanted(self, worker: _Worker, now: float) -> bool:
        ready = len(self._available(now))
        if worker.state == "cold":  # scale on queue depth: one more worker per job no starting one will take
            starting = sum(1 for w in self._workers if w.state == "initializing")
            return ready > starting
        return ready > 0

    def _serve_jobs(self, worker: _Worker) -> None:
        while True:
            with self._cond:
                while not self._closing.is_set() and not self._wanted(worker, time.monotonic()):
                    self._cond.wait(self._next_ready_in(time.monotonic()))
                if self._closing.is_set():
                    return
                if worker.state == "cold":
                    worker.state = "initializing"
            if worker.state == "initializing":
                self._closing.wait(self.cold_start)  # the boot: image pull, model load
            with self._cond:
                worker.state = "idle"
                job = self._pop(time.monotonic())
                if job is None:
                    continue
                worker.state = "running"
            self._record("take", job["id"], job["input"], {})
            self._run(job)
            with self._cond:
                worker.state = "idle"

    def _run(self, job: dict[str, Any]) -> None:
        assert self.work is not None
        report = Report(self, job["id"])
        if report.cancelled.is_set():
            return  # cancelled between leaving the queue and starting
        try:
            output = self.work({"id": job["id"], "input": job["input"]}, report)
            if inspect.isgenerator(output):
                items = []
                for item in output:
                    report.stream(item)
                    items.append(item)
                output = items
        except Exception as exc:  # noqa: BLE001 - the fake worker's edge: any failure of work is the job's
            self._record("done", job["id"], {"error": str(exc)}, {})
            return
        self._record("done", job["id"], output if _is_error(output) else {"output": output}, {})

    # -- the client-side API ----------------------------------------------------------------------
    def _rest(self, method: str, path: list[str], query: dict[str, list[str]], headers: Any,
              body: Any) -> tuple[int, Any, dict[str, str]] | None:
        if len(path) < 3 or path[0] != "v2":
            return None
        route = path[2]
        answer = self._answer(method, route, path, query, headers, body)
        if answer is not None:
            with self._cond:
                self.calls.append(RestCall(method, route, answer[0]))
                self._cond.notify_all()
        return answer

    def _answer(self, method: str, route: str, path: list[str], query: dict[str, list[str]], headers: Any,
                body: Any) -> tuple[int, Any, dict[str, str]] | None:
        if (headers.get("Authorization") if headers is not None else None) != f"Bearer {self.api_key}":
            return 401, {"error": "Unauthorized"}, {}
        if path[1] not in self.endpoints:
            return 404, {"error": f"endpoint {path[1]} not found"}, {}
        fault = self._fault(route)
        if fault is not None:
            if fault.hang:
                self._released.wait(HANG_MAX)
                return 503, {"error": "hung"}, {}
            return fault.status, {"error": f"injected {fault.status}"}, (
                {"Retry-After": fault.retry_after} if fault.retry_after is not None else {})
        job_id = path[3] if len(path) > 3 else ""
        with self._cond:
            if route in ("run", "runsync") and method == "POST":
                return self._submit(route, body, query)
            if route == "health" and method == "GET":
                return 200, self._health(), {}
            if route not in ("status", "stream", "cancel") or not job_id:
                return None
            job = self.jobs.get(job_id)
            if job is None:
                return 404, {"error": "request does not exist"}, {}
            if route == "cancel":
                self._cancel(job)
                return 200, {"id": job.id, "status": job.status}, {}
            if route == "stream":
                items = job.stream[job.read:]
                job.read = len(job.stream)
                return 200, {"status": job.status, "stream": [{"output": item} for item in items]}, {}
            answer = job.answer(time.monotonic())
            job.served.append(answer)
            self._cond.notify_all()
            return 200, answer, {}

    def _fault(self, route: str) -> Fault | None:
        with self._cond:
            for fault in self._faults:
                if fault.remaining > 0 and fault.route in (None, route):
                    fault.remaining -= 1
                    return fault
        return None

    def _submit(self, route: str, body: Any, query: dict[str, list[str]]) -> tuple[int, Any, dict[str, str]]:
        if not isinstance(body, dict) or "input" not in body:
            return 400, {"error": "the request has no input"}, {}
        job_id = self.submit(body["input"], body.get("policy"))
        job = self.jobs[job_id]
        if route == "runsync":
            wait_ms = int((query.get("wait") or [str(RUNSYNC_DEFAULT_MS)])[0])
            self._cond.wait_for(lambda: job.status in TERMINAL, wait_ms / 1000)
            return 200, job.answer(time.monotonic()), {}
        return 200, {"id": job_id, "status": job.status}, {}

    def _health(self) -> dict[str, Any]:
        statuses = [j.status for j in self.jobs.values()]
        states = [w.state for w in self._workers]
        return {
            "jobs": {"completed": statuses.count("COMPLETED"), "failed": statuses.count("FAILED")
                     + statuses.count("TIMED_OUT"), "inProgress": statuses.count("IN_PROGRESS"),
                     "inQueue": statuses.count("IN_QUEUE"), "retried": 0},
            "workers": {"idle": states.count("idle"), "initializing": states.count("initializing"),
                        "ready": states.count("idle"), "running": states.count("running"), "throttled": 0,
                        "unhealthy": 0},
        }


def _is_error(output: Any) -> bool:
    """The SDK fails a job whose handler returns ``{"error": ...}``."""
    return isinstance(output, dict) and output.get("error") is not None


# -- a worker that answers as narrator's handler does (shapes from narrator.runpod.output) ----------


def tone_wav(seconds: float = 0.5, rate: int = 22050, channels: int = 1, fmt: str = "WAV",
             subtype: str = "PCM_16") -> bytes:
    """Real audio: a 220 Hz tone, encoded by libsndfile."""
    import io

    import numpy as np
    import soundfile as sf

    t = np.arange(int(seconds * rate)) / rate
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    samples = np.stack([tone] * channels, axis=1) if channels > 1 else tone
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


@dataclass
class NarratorWork:
    """``work`` that answers like narrator's handler: progress per chunk, stream items when the input
    asks (``"stream": true``), then the success output with ``audio_b64`` (or ``audio_url`` only).

    ``audio`` replaces the audio (a broken file); ``sample_rate`` is what the result says;
    ``gate``: each job waits for it (or its cancel) before it ends; ``seen(job_id, chunks_done)``: called
    after each progress, so a test can hold the worker until its client saw the update
    (``fake.progress_seen``).
    """

    chunks: int = 3
    rate: int = 22050
    audio: bytes | None = None
    sample_rate: int | None = None
    inline: bool = True
    folder: Any = None
    """A pathlib.Path: with ``inline=False`` or streaming, the audio files go here (file:// URLs)."""
    gate: threading.Event | None = None
    seen: Callable[[str, int], None] | None = None
    error: str | None = None
    """Answer ``{"error": ...}`` instead, as the handler does for a bad request."""

    def __call__(self, job: dict[str, Any], report: Report) -> Any:
        from narrator.result import JobResult, Metrics, Progress
        from narrator.runpod.output import chunk_output, progress_output, success_output

        request = dict(job["input"])
        if self.error is not None:
            return {"error": self.error}
        narrator_id = f"nj-{job['id'][:8]}"
        for done in range(1, self.chunks + 1):
            report(progress_output(Progress(job_id=narrator_id, state="SYNTHESIZING", chunks_done=done,
                                            chunks_total=self.chunks, audio_seconds=0.5 * done)))
            if request.get("stream"):
                url = self._url(f"chunk-{done - 1}.flac")
                report.stream(chunk_output(narrator_id, done - 1, self.chunks, 0.5, url))
            if self.seen is not None:
                self.seen(job["id"], done)
        if self.gate is not None and not report.hold(self.gate):
            return {"error": "stopped by RunPod"}
        audio = self.audio if self.audio is not None else tone_wav(0.5 * self.chunks, self.rate)
        result = JobResult(
            duration_seconds=0.5 * self.chunks, text_length=len(str(request.get("text", ""))),
            metrics=Metrics(execution_time=0.1, model="local", sample_rate=self.rate, chunks_synthesized=self.chunks),
            job_id=narrator_id, output_key=f"jobs/{narrator_id}/output.wav", format="wav",
            sample_rate=self.sample_rate or self.rate, chunks=self.chunks,
            audio_b64=base64.b64encode(audio).decode() if self.inline else None,
            audio_url=self._url("output.wav", audio),
        )
        return success_output(result, 0.2)

    def _url(self, name: str, data: bytes = b"") -> str:
        if self.folder is None:
            return f"https://bucket.example/jobs/{name}?X-Amz-Signature=abc"
        path = self.folder / name
        path.write_bytes(data)
        return str(path.as_uri())
