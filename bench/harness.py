"""A small cluster for benchmarks: Redis, fake ComfyUI processes, GPU and CPU workers, on loopback."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from narrator.settings import PROJECT_WORKFLOWS, Settings
from tests.support.comfy import FakeProcess, start_fake_process
from tests.support.procs import RedisServer, WorkerPool, free_port


@dataclass
class Cluster:
    settings: Settings
    fakes: list[FakeProcess]
    pool: WorkerPool
    folder: Path


@contextlib.contextmanager
def cluster(
    gpu: int, cpu: int, synth_seconds: float = 0.0, cpu_concurrency: int = 2, gpu_concurrency: int = 1
) -> Iterator[Cluster]:
    with tempfile.TemporaryDirectory(prefix="narrator-bench-") as tmp:
        folder = Path(tmp)
        redis = RedisServer(free_port(), folder)
        redis.start()
        fakes: list[FakeProcess] = []
        pool = WorkerPool(folder)
        try:
            settings = Settings(
                broker_url=redis.url,
                storage_url=(folder / "store").as_uri(),
                workflows_dir=PROJECT_WORKFLOWS,
                default_model="vibevoice-large",
            )
            for i in range(gpu):
                fake = start_fake_process(free_port(), folder / f"comfy{i}", synth_seconds)
                fakes.append(fake)
                # As deployed (compose.yaml): a GPU worker warms its model up before its first task.
                gpu_settings = settings.with_(comfy_url=fake.url, warmup_models=("vibevoice-large",))
                pool.start(gpu_settings, queues="narrator.gpu", concurrency=gpu_concurrency, name=f"gpu{i}")
            for i in range(cpu):
                pool.start(settings, queues="narrator.cpu", concurrency=cpu_concurrency, name=f"cpu{i}")
            yield Cluster(settings, fakes, pool, folder)
        finally:
            pool.stop_all()
            for fake in fakes:
                fake.proc.terminate()
                fake.proc.wait(10)
            redis.stop()
