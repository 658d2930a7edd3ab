"""Books fanned out over serverless GPUs: the ``runpod`` engine against a fake RunPod endpoint.

One job of CHUNKS chunks; one ``narrator worker --pool threads`` process (the CPU side: staging,
every chunk's RunPod request, the join); a fake RunPod endpoint (tests/fakes/runpod_rest.py, real
HTTP on loopback) with WORKERS serverless workers, each paying COLD_START seconds when it first
starts and CHUNK_SECONDS per chunk (a simulated GPU: the chunk's real wire format is read, and a
real FLAC of the chunk's length written to the shared bucket at the key it names).

Ideal: every worker starts at once and runs CHUNKS / WORKERS chunks back to back, so the last
chunk ends COLD_START + (CHUNKS / WORKERS) x CHUNK_SECONDS after the chunks were sent. Measured:
from ``submit()`` to the last chunk stored (the chunk's done marker), and from the first chunk
sent to the last one stored, after one warm-up job on the embedded voice (a running service's
producer and worker; the serverless workers still start cold). Target: within 1.2x of the ideal.

Run: ``python -m bench bench_runpod``.
"""

from __future__ import annotations

import contextlib
import io
import math
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from narrator import jobs
from narrator.job.store import JobStore
from narrator.runpod.chunk_job import ChunkDone, ChunkJob
from narrator.settings import PROJECT_WORKFLOWS, Settings
from narrator.storage import open_store
from tests.fakes.runpod_api import ENDPOINT
from tests.fakes.runpod_rest import API_KEY, FakeServerless, Report
from tests.support.procs import RedisServer, WorkerPool, free_port

Row = tuple[str, float | None, str, float | None, float | None]

CHUNKS = 64
WORKERS = 16
COLD_START = 2.0
CHUNK_SECONDS = 0.5
THREADS = 64
RATE = 24000
MODEL = f"""
name = "gpu-on-runpod"
engine = "runpod"
sample_rate = {RATE}
max_chunk_chars = 80
min_chunk_chars = 10
parameters = ["temperature"]

[runpod]
endpoint = "{ENDPOINT}"
model = "vibevoice-large"
"""


class SimulatedGpu:
    """A serverless worker's chunk: CHUNK_SECONDS of 'GPU', then the audio where the engine said."""

    def __init__(self, settings: Settings) -> None:
        self.store = open_store(settings)
        self.pause = threading.Event()  # never set: the simulated GPU's busy time

    def __call__(self, job: dict[str, Any], report: Report) -> Any:
        chunk = ChunkJob.parse(job["input"]["chunk"])
        self.pause.wait(CHUNK_SECONDS)
        seconds = 0.06 * len(chunk.text.split())
        buf = io.BytesIO()
        t = np.arange(int(seconds * RATE)) / RATE
        sf.write(buf, (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), RATE, format="FLAC")
        self.store.put_bytes(chunk.output_key, buf.getvalue(), "audio/flac")
        done = ChunkDone(output_key=chunk.output_key, seconds=seconds, sample_rate=RATE, model=chunk.model)
        return {"chunk": done.model_dump()}


def text() -> str:
    # One sentence per chunk (max_chunk_chars 80): CHUNKS chunks.
    return " ".join(f"Sentence number {i} of the book goes here and stops." for i in range(CHUNKS))


@contextlib.contextmanager
def setup() -> Iterator[tuple[Settings, FakeServerless]]:
    with tempfile.TemporaryDirectory(prefix="narrator-bench-runpod-") as tmp:
        folder = Path(tmp)
        (folder / "workflows").mkdir()
        (folder / "workflows" / "gpu-on-runpod.toml").write_text(MODEL)
        (folder / "workflows" / "local.toml").write_text((PROJECT_WORKFLOWS / "local.toml").read_text())
        redis = RedisServer(free_port(), folder)
        redis.start()
        settings = Settings(broker_url=redis.url, storage_url=(folder / "store").as_uri(),
                            workflows_dir=folder / "workflows", default_model="gpu-on-runpod", verify="off",
                            runpod_api_key=API_KEY)
        pool = WorkerPool(folder)
        try:
            with FakeServerless(workers=WORKERS, cold_start=COLD_START, work=SimulatedGpu(settings)) as fake:
                settings = settings.with_(runpod_api_url=fake.api_url)
                pool.start_command(settings, "fanout", "--queues", "all", "--pool", "threads",
                                   "--concurrency", str(THREADS))
                yield settings, fake
        finally:
            pool.stop_all()
            redis.stop()


def measure(settings: Settings, fake: FakeServerless) -> tuple[float, float, int, int]:
    # A running service: this producer and the worker have run a job before (on the embedded voice,
    # so no serverless worker is warmed by it: those start cold, as the ideal says).
    jobs.submit({"text": "Warm up.", "model": "local"}, settings).wait(60)
    started = time.monotonic()
    handle = jobs.submit({"text": text()}, settings)
    store = JobStore(open_store(settings), handle.id)
    last = None
    while last is None:  # a benchmark's clock, not a test's synchronisation: 10 ms resolution
        if len(store.done()) >= CHUNKS:
            last = time.monotonic()
        elif time.monotonic() - started > 120:
            raise RuntimeError(f"only {len(store.done())} of {CHUNKS} chunks in 120 s")
        else:
            time.sleep(0.01)
    result = handle.wait(60)
    sent = min(j.submitted for j in fake.jobs.values())
    calls = len(fake.calls)
    return last - started, last - sent, result.chunks, calls


def run() -> list[Row]:
    ideal = COLD_START + math.ceil(CHUNKS / WORKERS) * CHUNK_SECONDS
    with setup() as (settings, fake):
        from_submit, from_sent, chunks, calls = measure(settings, fake)
    if chunks != CHUNKS:
        raise RuntimeError(f"the job had {chunks} chunks, not {CHUNKS}")
    name = f"runpod fan-out, {CHUNKS} chunks on {WORKERS} workers"
    return [
        (f"{name}: submit to last chunk", from_submit, "s", ideal, from_submit / ideal),
        (f"{name}: first sent to last chunk", from_sent, "s", ideal, from_sent / ideal),
        (f"{name}: RunPod API calls per chunk", calls / CHUNKS, "calls", None, None),
    ]


def main() -> None:
    from bench.__main__ import format_row

    for row in run():
        print(format_row(row))


if __name__ == "__main__":
    main()
