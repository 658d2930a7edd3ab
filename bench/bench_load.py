"""Load: many small jobs through 4 GPU workers (each on its own fake ComfyUI) and 2 CPU workers.

The scenario behind ``tests/reliability/test_load.py``: jobs of 4 chunks with texts
unique per job (nothing is cached), submitted by a closed loop that keeps ``window``
jobs in flight. It checks that no job is lost or duplicated and reports throughput,
job latency (submit to result) and the memory of every worker process tree.

``python -m bench bench_load`` (``NARRATOR_BENCH_LOAD_JOBS`` overrides the job count).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import redis

from narrator import jobs
from narrator.job.store import JobStore
from narrator.result import JobState
from narrator.settings import PROJECT_WORKFLOWS, Settings
from narrator.storage import ObjectStore, open_store
from narrator.tasks.names import CPU_QUEUE, GPU_QUEUE
from tests.reliability.chaos_support import Cluster, cluster, paragraphs, posted_texts, request
from tests.reliability.conftest import queue_length
from tests.support.procs import RedisServer, WorkerPool, free_port, wait_until

JOBS = 500
CHUNKS = 4
GPU_WORKERS = 4
CPU_WORKERS = 2
CPU_CONCURRENCY = 2
WINDOW = 24
"""Jobs in flight at once: enough to keep every GPU worker busy."""
WARM_UP = 200
"""Memory is compared between this many jobs done and the end. The CPU workers' children grow by
some 40 MB each over their first ~200 jobs (the allocator's high-water mark under the audio
join's buffers), then hold, with an occasional step of ~15 MB; GPU workers stay within 1 MB."""
SAMPLE_EVERY = 50
SECONDS_PER_WORD = 0.08
"""Fake speech this fast keeps the audio, and the CPU spent on it, small (the fake needs 0.071 at least)."""


@dataclass
class LoadReport:
    jobs: int
    chunks: int
    window: int
    seconds: float
    latencies: list[float]
    prompts: int
    cache_hits: int
    rss: list[tuple[int, dict[str, int]]] = field(default_factory=list)
    """(jobs done, worker name -> RSS of its process tree), every ``SAMPLE_EVERY`` jobs and at the end."""
    warm_up: int = WARM_UP

    @property
    def jobs_per_second(self) -> float:
        return self.jobs / self.seconds

    @property
    def rss_start(self) -> dict[str, int]:
        """After the warm-up."""
        return next(sample for done, sample in self.rss if done >= self.warm_up)

    @property
    def rss_end(self) -> dict[str, int]:
        return self.rss[-1][1]

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]

    def figures(self) -> list[tuple[str, float, str, float | None, float | None]]:
        rows: list[tuple[str, float, str, float | None, float | None]] = [
            (f"load {self.jobs}x{self.chunks} throughput", self.jobs_per_second, "jobs/s", None, None),
            ("load job latency p50", self.percentile(50), "s", None, None),
            ("load job latency p99", self.percentile(99), "s", None, None),
            ("load wall time", self.seconds, "s", None, None),
            ("load prompts posted", float(self.prompts), "prompts", None, None),
        ]
        first, start, end = self.rss[0], self.rss_start, self.rss_end
        for name in sorted(end):
            mb = {k: v[name] / 2**20 for k, v in (("first", first[1]), ("start", start), ("end", end))}
            rows.append((f"load rss {name} after {first[0]} jobs", mb["first"], "MB", None, None))
            rows.append((f"load rss {name} after {self.warm_up} (start)", mb["start"], "MB", None, None))
            ratio = mb["end"] / mb["start"]
            rows.append((f"load rss {name} after {self.jobs} (end)", mb["end"], "MB", mb["start"], ratio))
        return rows

    def text(self) -> str:
        lines = [f"{name:<40} {value:>10.3f} {unit}" for name, value, unit, _, _ in self.figures()]
        curve = [f"{done:>4} jobs: " + " ".join(f"{k}={v / 2**20:.0f}" for k, v in sorted(rss.items()))
                 for done, rss in self.rss]
        return "\n".join([*lines, "RSS of each worker process tree (MB):", *curve])


def tree_rss(pid: int) -> int:
    """Resident memory of a process and all its children, in bytes."""
    root = psutil.Process(pid)
    total = 0
    for proc in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += proc.memory_info().rss
    return total


def worker_rss(pool: WorkerPool) -> dict[str, int]:
    return {w.name: tree_rss(w.proc.pid) for w in pool.workers}


@contextlib.contextmanager
def load_cluster(folder: Path) -> Iterator[Cluster]:
    server = RedisServer(free_port(), folder / "redis")
    server.folder.mkdir(parents=True, exist_ok=True)
    server.start()
    try:
        settings = Settings(
            broker_url=server.url, storage_url=(folder / "store").as_uri(), workflows_dir=PROJECT_WORKFLOWS,
            default_model="vibevoice-large",
        )
        with cluster(settings, folder, gpu=GPU_WORKERS, cpu=CPU_WORKERS, cpu_concurrency=CPU_CONCURRENCY) as running:
            for fake in running.fakes:
                fake.configure(seconds_per_word=SECONDS_PER_WORD)
            yield running
    finally:
        server.stop()


def drive(running: Cluster, n: int, window: int, deadline: float) -> tuple[dict[str, float], float, list[Any]]:
    """Submit ``n`` jobs keeping ``window`` in flight: job id -> latency, wall time, RSS samples."""
    store = open_store(running.settings)
    submitted: dict[str, float] = {}
    latencies: dict[str, float] = {}
    samples: list[tuple[int, dict[str, int]]] = []
    started = time.perf_counter()
    end = started + deadline
    while len(latencies) < n:
        while len(submitted) - len(latencies) < window and len(submitted) < n:
            text = paragraphs(CHUNKS, f"load{len(submitted)}")
            handle = jobs.submit(request(text) | {"output": {"format": "wav"}}, running.settings)
            submitted[handle.id] = time.perf_counter()
        for job_id in [j for j in submitted if j not in latencies]:
            job = JobStore(store, job_id)
            state = job.state()
            if state is JobState.SUCCESS:
                latencies[job_id] = time.perf_counter() - submitted[job_id]
            elif state.final:
                raise AssertionError(f"job {job_id} ended {state}: {job.error()!r}")
        if len(latencies) >= SAMPLE_EVERY * (len(samples) + 1) and len(latencies) < n:
            samples.append((len(latencies), worker_rss(running.pool)))
        if time.perf_counter() > end:
            raise AssertionError(f"{len(latencies)} of {n} jobs done after {deadline} s\n{running.pool.logs()}")
        time.sleep(0.02)
    return latencies, time.perf_counter() - started, samples


def check_results(running: Cluster, store: ObjectStore, job_ids: list[str]) -> tuple[int, int]:
    """Every job has its result and output, every chunk was synthesized exactly once; (prompts, cache hits)."""
    expected: Counter[str] = Counter()
    cache_hits = 0
    for job_id in job_ids:
        job = JobStore(store, job_id)
        result = job.result()
        assert result is not None and result.job_id == job_id and result.chunks == CHUNKS, result
        assert store.exists(result.output_key), job_id
        cache_hits += result.metrics.cache_hits
        assert len(job.done()) == CHUNKS, job_id
        manifest = job.manifest()
        expected.update(chunk.text for chunk in manifest.chunks)
    posted = posted_texts(running.fakes)
    assert cache_hits == 0, f"{cache_hits} chunks came from the cache; texts were meant to be unique"
    assert sum(posted.values()) == len(job_ids) * CHUNKS - cache_hits, sum(posted.values())
    assert posted == expected, "a chunk was synthesized twice, or never"
    return sum(posted.values()), cache_hits


def broker_drained(settings: Settings) -> bool:
    """No message left in a queue, none taken and unacknowledged."""
    client = redis.Redis.from_url(settings.broker_url)
    try:
        return not any((queue_length(client, CPU_QUEUE), queue_length(client, GPU_QUEUE), client.hlen("unacked")))
    finally:
        client.close()


def result_subscriptions(settings: Settings) -> int:
    """Redis channel subscriptions held by any client: workers must not keep one per chunk they fanned out."""
    client = redis.Redis.from_url(settings.broker_url)
    try:
        return sum(int(c.get("sub", 0)) for c in client.client_list())
    finally:
        client.close()


def run_load(folder: Path, n: int = JOBS, window: int = WINDOW, deadline: float = 600) -> LoadReport:
    with load_cluster(folder) as running:
        latencies, seconds, samples = drive(running, n, window, deadline)
        store = open_store(running.settings)
        prompts, cache_hits = check_results(running, store, list(latencies))
        wait_until(lambda: broker_drained(running.settings), 30, "the broker to hold no message")
        subscriptions = result_subscriptions(running.settings)
        assert subscriptions == 0, f"{subscriptions} result channels still subscribed after the run"
        samples.append((n, worker_rss(running.pool)))
    # A short run (a quick benchmark) compares its first sample with its end.
    warm_up = WARM_UP if n > WARM_UP else samples[0][0]
    return LoadReport(n, CHUNKS, window, seconds, list(latencies.values()), prompts, cache_hits, samples, warm_up)


def run() -> list[tuple[str, float, str, float | None, float | None]]:
    n = int(os.environ.get("NARRATOR_BENCH_LOAD_JOBS", JOBS))
    with tempfile.TemporaryDirectory(prefix="narrator-load-") as tmp:
        report = run_load(Path(tmp), n)
    return report.figures()

