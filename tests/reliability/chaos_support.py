"""Helpers for the chaos and load tests: job texts, what the fakes were asked, output checks."""

from __future__ import annotations

import contextlib
import io
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import soundfile as sf

from narrator.errors import NarratorError
from narrator.job.store import JobStore
from narrator.jobs import JobHandle
from narrator.result import JobResult
from narrator.settings import PROJECT_WORKFLOWS, Settings
from narrator.storage import open_store
from tests.pipeline.checks import assert_chunks_in_order
from tests.support.comfy import FakeProcess, start_fake_process, stop_fakes
from tests.support.procs import RedisServer, WorkerPool, free_port, wait_until

MODEL = "vibevoice-large"
TTS_NODE = "VibeVoiceTTS"

_SENTENCES = [
    "The lighthouse keeper wrote down the colour of the sea every morning before he lit the stove.",
    "Some days the water was grey as slate, and some days it was the green of old bottle glass.",
    "His daughter read the notebooks years later and found the weather of a whole lost decade there.",
]


def cluster_settings(redis_server: RedisServer, folder: Path) -> Settings:
    """Settings for jobs through the (flushed) session Redis with file storage in ``folder``."""
    redis_server.flush()
    return Settings(
        broker_url=redis_server.url, storage_url=(folder / "store").as_uri(), workflows_dir=PROJECT_WORKFLOWS,
        default_model=MODEL,
    )


@dataclass
class Cluster:
    """Fake ComfyUI processes, a GPU worker on each, and CPU workers, all on one Redis."""

    settings: Settings
    fakes: list[FakeProcess]
    pool: WorkerPool


@contextlib.contextmanager
def cluster(
    settings: Settings, folder: Path, gpu: int, cpu: int = 1, cpu_concurrency: int = 1, synth_seconds: float = 0.0,
    env: dict[str, str] | None = None,
) -> Iterator[Cluster]:
    fakes: list[FakeProcess] = []
    pool = WorkerPool(folder)
    try:
        for i in range(gpu):
            fake = start_fake_process(free_port(), folder / f"comfyui-{i}", synth_seconds)
            fakes.append(fake)
            pool.start(settings.with_(comfy_url=fake.url), queues="narrator.gpu", name=f"gpu{i}", extra_env=env)
        for i in range(cpu):
            pool.start(settings, queues="narrator.cpu", concurrency=cpu_concurrency, name=f"cpu{i}", extra_env=env)
        yield Cluster(settings, fakes, pool)
    finally:
        pool.stop_all()
        stop_fakes(fakes)


def paragraphs(n: int, tag: str) -> str:
    """``n`` paragraphs, one chunk each (paragraphs are hard chunk boundaries), unique to ``tag``.

    Each is longer than the model's ``min_chunk_chars`` so no two merge.
    """
    return "\n\n".join(
        f"Record {tag} part {i + 1}. {_SENTENCES[i % 3]} {_SENTENCES[(i + 1) % 3]}" for i in range(n)
    )


def request(text: str) -> dict[str, Any]:
    return {"text": text, "model": MODEL, "output": {"format": "flac"}}


def prompt_texts(prompts: Iterable[dict[str, Any]]) -> list[str]:
    return [
        node["inputs"]["text"] for prompt in prompts for node in prompt.values() if node.get("class_type") == TTS_NODE
    ]


def posted_texts(fakes: Iterable[FakeProcess]) -> Counter[str]:
    """Chunk text -> how many prompts carried it, over every fake."""
    texts: Counter[str] = Counter()
    for fake in fakes:
        texts.update(prompt_texts(stat(fake, "prompts")))
    return texts


def job_posts(fakes: Iterable[FakeProcess], settings: Settings, job_id: str) -> Counter[str]:
    """This job's chunk texts -> how many prompts carried each (0 for a chunk never posted)."""
    posted = posted_texts(fakes)
    return Counter({text: posted[text] for text in manifest_texts(settings, job_id)})


def restarted(fake: FakeProcess) -> bool:
    """Whether the fake is back from its first restart (it refuses connections while down)."""
    try:
        return bool(stat(fake, "restarts") == 1)
    except httpx.TransportError:
        return False  # still down


def stat(fake: FakeProcess, name: str) -> Any:
    return fake.stats()[name]


def posted(fake: FakeProcess) -> int:
    return int(stat(fake, "prompts_posted"))


def running_prompt(fake: FakeProcess, after: int) -> str | None:
    """The text of a prompt posted after the first ``after`` that the fake is still executing (or queueing)."""
    stats: dict[str, Any] = fake.stats()
    posted, executed = int(stats["prompts_posted"]), int(stats["prompts_executed"])
    if posted > after and executed < posted:
        return prompt_texts(stats["prompts"][-1:])[0]
    return None


def wait_mid_chunk(fake: FakeProcess, after: int, timeout: float = 60) -> str:
    """Block until the worker on ``fake`` is in the middle of a chunk; that chunk's text."""
    text = wait_until(lambda: running_prompt(fake, after), timeout, "a worker to be in the middle of a chunk")
    assert isinstance(text, str)
    return text


def manifest_texts(settings: Settings, job_id: str) -> list[str]:
    return [c.text for c in JobStore(open_store(settings), job_id).manifest().chunks]


def assert_complete_in_order(settings: Settings, handle: JobHandle, result: JobResult, n: int) -> None:
    """The job has ``n`` chunks, each done once and heard once, in order, in the output."""
    store = open_store(settings)
    assert result.success and result.chunks == n, result
    assert len(manifest_texts(settings, handle.id)) == n
    done = handle.job_store.done()
    assert sorted(done) == list(range(n)), sorted(done)
    samples, rate = sf.read(io.BytesIO(store.get_bytes(result.output_key)), dtype="float32")
    assert rate == 24000
    assert_chunks_in_order(store, handle.id, n, samples, rate)


def wait_for(handle: JobHandle, timeout: float, pool: WorkerPool) -> JobResult:
    """``handle.wait`` with the workers' logs in the failure message."""
    try:
        return handle.wait(timeout=timeout)
    except NarratorError as exc:
        raise AssertionError(f"{type(exc).__name__}: {exc}\n{pool.logs()}") from exc
