"""Worker-side Prometheus metrics, fed by Celery's task signals: they work with any broker.

Tasks run in the pool's child processes, so the numbers live in prometheus_client's
multiprocess files (a fresh folder per worker) and the worker's main process serves
them, with the broker's queue depths, on one port: ``NARRATOR_METRICS_PORT``.

What a task's start or end means for the metrics is :func:`updates`, a pure
function of a :class:`TaskEvent`; the signal handlers below only build events and
apply the updates.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from celery.signals import (
    task_postrun,
    task_prerun,
    worker_init,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutdown,
)

from ..settings import Settings
from .names import CHUNK_TASK, STAGE_TASK, UPLOAD_TASK, job_id_of

log = logging.getLogger(__name__)

CHUNK_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 900)
JOB_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400)
TASK_BUCKETS = (0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 900)
#: Queue depths are asked of the broker at most this often, however often Prometheus scrapes.
DEPTH_TTL = 5.0

# name -> (kind, help, label names, histogram buckets)
METRICS: dict[str, tuple[str, str, tuple[str, ...], tuple[float, ...]]] = {
    "narrator_jobs_started": ("counter", "Jobs whose staging started.", (), ()),
    "narrator_jobs_succeeded": ("counter", "Jobs uploaded with a result.", (), ()),
    "narrator_jobs_failed": ("counter", "Jobs that failed, by the task that failed them.", ("task",), ()),
    "narrator_job_seconds": ("histogram", "Seconds from staging to upload, per finished job.", (), JOB_BUCKETS),
    "narrator_audio_seconds": ("counter", "Seconds of audio in finished jobs' outputs.", (), ()),
    "narrator_chunks_started": ("counter", "Chunk task runs started (a retry runs again).", (), ()),
    "narrator_chunks_succeeded": ("counter", "Chunks done, cached or synthesized.", ("cached",), ()),
    "narrator_chunks_failed": ("counter", "Chunks that failed for good.", (), ()),
    "narrator_chunks_retried": ("counter", "Chunk runs that ended in a retry.", (), ()),
    "narrator_chunk_synthesis_seconds": (
        "histogram", "Seconds to synthesize one chunk (cache hits excluded).", (), CHUNK_BUCKETS),
    "narrator_chunk_audio_seconds": ("counter", "Seconds of chunk audio produced.", ("cached",), ()),
    "narrator_task_runs": ("counter", "Pipeline task runs by end state.", ("task", "state"), ()),
    "narrator_task_seconds": ("histogram", "Seconds per pipeline task run.", ("task",), TASK_BUCKETS),
}


@dataclass(frozen=True)
class TaskEvent:
    """One pipeline task starting (``state`` empty) or ending (``state`` = Celery's end state)."""

    task: str
    job_id: str = ""
    state: str = ""
    seconds: float | None = None
    result: Any = None


@dataclass(frozen=True)
class Update:
    metric: str
    value: float = 1.0
    labels: tuple[tuple[str, str], ...] = ()


def updates(event: TaskEvent) -> list[Update]:
    """What ``event`` changes: counters are incremented, histograms observe ``value``."""
    if not event.task.startswith("narrator."):
        return []
    if not event.state:
        return _started(event.task)
    out = [Update("narrator_task_runs", labels=(("task", event.task), ("state", event.state)))]
    if event.seconds is not None:
        out.append(Update("narrator_task_seconds", event.seconds, (("task", event.task),)))
    if event.state == "SUCCESS":
        out += _succeeded(event)
    elif event.state == "FAILURE":
        out += [Update("narrator_jobs_failed", labels=(("task", event.task),))]
        if event.task == CHUNK_TASK:
            out.append(Update("narrator_chunks_failed"))
    elif event.state == "RETRY" and event.task == CHUNK_TASK:
        out.append(Update("narrator_chunks_retried"))
    return out


def _started(task: str) -> list[Update]:
    if task == STAGE_TASK:
        return [Update("narrator_jobs_started")]
    if task == CHUNK_TASK:
        return [Update("narrator_chunks_started")]
    return []


def _succeeded(event: TaskEvent) -> list[Update]:
    result = event.result if isinstance(event.result, Mapping) else {}
    if event.task == CHUNK_TASK and "seconds" in result:
        cached = (("cached", "true" if result.get("cached") else "false"),)
        out = [
            Update("narrator_chunks_succeeded", labels=cached),
            Update("narrator_chunk_audio_seconds", float(result["seconds"]), cached),
        ]
        if not result.get("cached") and event.seconds is not None:
            out.append(Update("narrator_chunk_synthesis_seconds", event.seconds))
        return out
    if event.task == UPLOAD_TASK and "duration_seconds" in result:
        out = [Update("narrator_jobs_succeeded"), Update("narrator_audio_seconds", float(result["duration_seconds"]))]
        execution = (result.get("metrics") or {}).get("execution_time")
        if execution is not None:
            out.append(Update("narrator_job_seconds", float(execution)))
        return out
    return []


def metrics_address(settings: Settings) -> tuple[str, int] | None:
    """Where this worker serves its metrics, or None when NARRATOR_METRICS_PORT is unset or 0."""
    return (settings.metrics_addr, settings.metrics_port) if settings.metrics_port > 0 else None


class _Recorder:
    """The metric objects of one process, made after the multiprocess folder is known."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Histogram, values

        # The value class is chosen when prometheus_client is first imported, maybe before the
        # folder was set (or in the parent before the fork): choose again now.
        values.ValueClass = values.get_value_class()
        self.metrics: dict[str, Any] = {}
        for name, (kind, doc, labels, buckets) in METRICS.items():
            if kind == "counter":
                self.metrics[name] = Counter(name, doc, labels, registry=None)
            else:
                self.metrics[name] = Histogram(name, doc, labels, buckets=buckets, registry=None)
        self.started: dict[str, float] = {}
        self.failed_jobs: OrderedDict[str, None] = OrderedDict()

    def apply(self, update: Update) -> None:
        metric = self.metrics[update.metric]
        if update.labels:
            metric = metric.labels(**dict(update.labels))
        if METRICS[update.metric][0] == "counter":
            metric.inc(update.value)
        else:
            metric.observe(update.value)

    def first_failure(self, job_id: str) -> bool:
        """One failed job counts once per process, however many of its tasks fail."""
        if not job_id or job_id in self.failed_jobs:
            return not job_id
        self.failed_jobs[job_id] = None
        while len(self.failed_jobs) > 1000:
            self.failed_jobs.popitem(last=False)
        return True


@dataclass
class _State:
    folder: str = ""
    recorder: _Recorder | None = None
    server: Any = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self) -> _Recorder | None:
        if not self.folder:
            return None
        with self.lock:
            if self.recorder is None:
                self.recorder = _Recorder()
            return self.recorder


_state = _State()


def prepare(settings: Settings) -> bool:
    """Choose this worker's metrics folder (main process, before the pool forks)."""
    if metrics_address(settings) is None or _state.folder:
        return False
    _state.folder = tempfile.mkdtemp(prefix="narrator-metrics-")
    # prometheus_client reads its multiprocess folder from the environment, in every pool process.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _state.folder
    return True


def serve(settings: Settings, app: Any, hostname: str = "") -> bool:
    """Serve the pool's metrics and the queue depths on NARRATOR_METRICS_PORT (main process)."""
    address = metrics_address(settings)
    if address is None or not _state.folder or _state.server is not None:
        return False
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=_state.folder)
    registry.register(QueueDepthCollector(app))
    _state.server, _ = start_http_server(address[1], addr=address[0], registry=registry)
    log.info("metrics served", extra={"addr": address[0], "port": address[1], "worker": hostname})
    return True


def uninstall() -> None:
    if _state.server is not None:
        _state.server.shutdown()
        _state.server.server_close()
        _state.server = None
    if _state.folder:
        shutil.rmtree(_state.folder, ignore_errors=True)
        _state.folder = ""
    _state.recorder = None


class QueueDepthCollector:
    """``narrator_queue_depth{queue}``: messages waiting, as the broker reports them, per queue."""

    def __init__(self, app: Any, ttl: float = DEPTH_TTL) -> None:
        self.app = app
        self.ttl = ttl
        self._lock = threading.Lock()
        self._cached: tuple[float, dict[str, int]] = (float("-inf"), {})

    def queue_names(self) -> list[str]:
        names = {q.name for q in self.app.conf.task_queues or ()}
        names.update(self.app.amqp.queues.keys())
        return sorted(names)

    def depths(self) -> dict[str, int]:
        with self._lock:
            at, cached = self._cached
            if time.monotonic() - at < self.ttl:
                return cached
            depths = self._ask_broker(self.queue_names())
            self._cached = (time.monotonic(), depths)
            return depths

    def _ask_broker(self, names: Sequence[str]) -> dict[str, int]:
        from kombu.exceptions import ChannelError

        depths: dict[str, int] = {}
        conn = self.app.connection_for_read()
        try:
            errors = (OSError, *conn.connection_errors, *conn.channel_errors)
            try:
                conn.ensure_connection(max_retries=1, timeout=5)
                for name in names:
                    with conn.channel() as channel:
                        try:
                            depths[name] = int(channel.queue_declare(queue=name, passive=True).message_count)
                        except (ChannelError, *conn.channel_errors) as exc:
                            if not _not_found(exc):
                                raise
                            depths[name] = 0  # the broker has no such queue: nothing waits in it
            except errors as exc:
                log.warning("queue depth unavailable", extra={"error": str(exc)})
                return {}
        finally:
            conn.release()
        return depths

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        family = GaugeMetricFamily("narrator_queue_depth", "Messages waiting in a queue, as the broker tells it.",
                                   labels=["queue"])
        for name, depth in self.depths().items():
            family.add_metric([name], depth)
        yield family


def _not_found(exc: BaseException) -> bool:
    return getattr(exc, "reply_code", None) == 404 or "NOT_FOUND" in str(exc)


@worker_init.connect
def _on_worker_init(**_: Any) -> None:
    from .context import current

    prepare(current().settings)


@worker_ready.connect
def _on_worker_ready(sender: Any = None, **_: Any) -> None:
    # After the pool has forked, so the children do not inherit the listening socket.
    from .app import app
    from .context import current

    serve(current().settings, app, getattr(sender, "hostname", ""))


@worker_process_init.connect
def _on_process_init(**_: Any) -> None:
    # A forked child starts with no metric objects of its own.
    _state.recorder = None
    _state.lock = threading.Lock()


@worker_process_shutdown.connect
def _on_process_shutdown(pid: int | None = None, **_: Any) -> None:
    if _state.folder:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid or os.getpid(), _state.folder)


@worker_shutdown.connect
def _on_worker_shutdown(**_: Any) -> None:
    uninstall()


@task_prerun.connect
def _on_prerun(task_id: str = "", task: Any = None, **_: Any) -> None:
    recorder = _state.record()
    if recorder is None or task is None:
        return
    recorder.started[task_id] = time.monotonic()
    for update in updates(TaskEvent(task.name)):
        recorder.apply(update)


@task_postrun.connect
def _on_postrun(
    task_id: str = "", task: Any = None, args: Any = None, kwargs: Any = None,
    retval: Any = None, state: str = "", **_: Any,
) -> None:
    recorder = _state.record()
    if recorder is None or task is None:
        return
    began = recorder.started.pop(task_id, None)
    seconds = time.monotonic() - began if began is not None else None
    job_id = job_id_of(task.name, task_id, args, kwargs)
    event = TaskEvent(task.name, job_id, state or "", seconds, retval)
    for update in updates(event):
        if update.metric == "narrator_jobs_failed" and not recorder.first_failure(job_id):
            continue
        recorder.apply(update)
