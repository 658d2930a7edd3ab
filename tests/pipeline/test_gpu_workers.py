"""The production path: GPU worker processes, each driving its own (fake) ComfyUI, on the real Redis."""

from __future__ import annotations

import io
import itertools
from collections import Counter
from typing import Any

import pytest
import soundfile as sf

from narrator import jobs
from narrator.settings import Settings
from narrator.storage import open_store
from tests.pipeline.checks import assert_chunks_in_order
from tests.support.procs import WorkerPool, wait_until

pytestmark = pytest.mark.integration

SENTENCES = [
    "The river ran brown and fast after the spring rains had come down from the hills.",
    "Nobody in the village could remember a flood quite like the one that came that year.",
    "The miller's daughter kept a careful record of the water's height on the old stone wall.",
]


TEXT_ONE_CHUNK = "The lamp in the window burned all night, and the keeper watched the dark sea until dawn came."


def thirty_paragraphs() -> str:
    return "\n\n".join(f"Part {i + 1}. {SENTENCES[i % 3]} {SENTENCES[(i + 1) % 3]}" for i in range(30))


def posted_texts(fakes: list[Any]) -> Counter[str]:
    texts: Counter[str] = Counter()
    for fake in fakes:
        for prompt in fake.stats()["prompts"]:
            for node in prompt.values():
                if node.get("class_type") == "VibeVoiceTTS":
                    texts[node["inputs"]["text"]] += 1
    return texts


def test_thirty_chunks_on_three_gpu_workers(
    broker_settings: Settings, worker_pool: WorkerPool, fake_comfy_processes: Any
) -> None:
    fakes = fake_comfy_processes(3)
    for i, fake in enumerate(fakes):
        worker_pool.start(broker_settings.with_(comfy_url=fake.url), queues="narrator.gpu", name=f"gpu{i}")
    worker_pool.start(broker_settings, queues="narrator.cpu", concurrency=2, name="cpu")

    text = thirty_paragraphs()
    handle = jobs.submit({"text": text, "model": "vibevoice-large", "output": {"format": "flac"}}, broker_settings)
    result = handle.wait(timeout=240)

    assert result.chunks == 30 and result.sample_rate == 24000
    texts = posted_texts(fakes)
    assert sum(texts.values()) == 30, texts
    assert all(count == 1 for count in texts.values()), "a chunk was synthesized twice"
    assert set(texts) == {c.text for c in handle.job_store.manifest().chunks}
    # Every fake did some of the work: the chunks really fanned out.
    assert all(fake.stats()["prompts_executed"] > 0 for fake in fakes)

    store = open_store(broker_settings)
    samples, rate = sf.read(io.BytesIO(store.get_bytes(result.output_key)), dtype="float32")
    assert rate == 24000
    assert_chunks_in_order(store, handle.id, 30, samples, rate)


def test_gpu_worker_warms_up_before_taking_tasks(
    broker_settings: Settings, worker_pool: WorkerPool, fake_comfy_processes: Any
) -> None:
    (fake,) = fake_comfy_processes(1)
    settings = broker_settings.with_(comfy_url=fake.url, warmup_models=("vibevoice-large",))
    worker_pool.start(settings, queues="narrator.gpu", name="gpu")
    worker_pool.start(broker_settings, queues="narrator.cpu", name="cpu")
    # Submitted the moment the worker is up: the main process warmed ComfyUI up before the
    # pool started, and the pool child runs its own short prompt before it takes the chunk.
    handle = jobs.submit({"text": TEXT_ONE_CHUNK, "model": "vibevoice-large"}, broker_settings)
    handle.wait(timeout=120)
    texts = [t for t, _ in posted_texts([fake]).items()]
    prompts = fake.stats()["prompts"]
    assert len(texts) == 2 and len(prompts) == 3
    tts = [next(n for n in p.values() if n["class_type"] == "VibeVoiceTTS") for p in prompts]
    assert ["lamp" in node["inputs"]["text"] for node in tts] == [False, False, True], "a chunk ran before a warm-up"


def job_texts(fake: Any) -> dict[str, int]:
    """The job's chunk texts (not the warm-ups') the fake was asked for, and how often."""
    return {t: count for t, count in posted_texts([fake]).items() if t.startswith("Speaker 1: Part")}


def test_two_slots_keep_the_next_prompt_queued_on_one_gpu(
    broker_settings: Settings, worker_pool: WorkerPool, fake_comfy_processes: Any
) -> None:
    """``--concurrency 2`` on a GPU worker: ComfyUI runs one prompt at a time, the other slot's waits in its queue."""
    (fake,) = fake_comfy_processes(1)
    settings = broker_settings.with_(comfy_url=fake.url, warmup_models=("vibevoice-large",))
    worker_pool.start(settings, queues="narrator.gpu", concurrency=2, name="gpu")
    worker_pool.start(broker_settings, queues="narrator.cpu", name="cpu")
    # Each prompt now runs until another waits behind it in ComfyUI's queue: with the other slot keeping
    # the queue fed the job goes on at any machine's speed; without, it would stall (and fail).
    fake.configure(hold_until_queued=True)
    handle = jobs.submit({"text": thirty_paragraphs(), "model": "vibevoice-large"}, broker_settings)
    staged = wait_until(lambda: handle.progress().chunks_total, 60, "the job to be staged")
    wait_until(lambda: len(job_texts(fake)) >= staged, 120, "every chunk's prompt to reach ComfyUI")
    fake.configure(hold_until_queued=False)  # the last prompt has none behind it
    result = handle.wait(timeout=120)

    n = result.chunks
    assert n >= 6
    texts = job_texts(fake)
    assert len(texts) == n and all(count == 1 for count in texts.values()), "a chunk was synthesized twice"
    stats = fake.stats()
    runs = sorted(
        (stats["started_wall"][p], stats["finished_wall"][p], stats["posted_wall"][p]) for p in stats["started_wall"]
    )[-n:]  # after the slots' warm-up prompts
    for (_, finished, _), (started, _, posted) in itertools.pairwise(runs):
        assert started >= finished, "ComfyUI ran two prompts at once"
        assert posted < finished, "the next prompt was not waiting in ComfyUI's queue: the GPU sat idle"
    store = open_store(broker_settings)
    samples, rate = sf.read(io.BytesIO(store.get_bytes(result.output_key)), dtype="float32")
    assert_chunks_in_order(store, handle.id, n, samples, rate)
