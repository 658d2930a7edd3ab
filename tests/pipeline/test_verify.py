"""Every chunk heard, through the brokered pipeline: a GPU worker drives a fake ComfyUI that
speaks real English and breaks every third chunk's first synthesis (its first half only);
a CPU worker checks each chunk against its text with pocketsphinx and sends a failing one
back to the GPU queue with the next seed. The job ends whole, with the retries counted."""

from __future__ import annotations

import io
from collections import Counter, defaultdict
from typing import Any

import pytest
import soundfile as sf

from narrator import jobs
from narrator.job.verify import Verdict
from narrator.settings import Settings
from narrator.storage import open_store
from narrator.verify.timing import tokens
from tests.support.procs import WorkerPool
from tests.support.speech_corpus import SENTENCES

pytestmark = pytest.mark.integration

# Numbered parts, so the chunker cuts between them (plain paragraphs would be packed together).
TEXT = "\n\n".join(f"Part {i + 1}. {SENTENCES[2 * i]} {SENTENCES[2 * i + 1]}" for i in range(7))
EVERY = 3  # the fake breaks the first synthesis of the 1st, 4th, 7th... text, in the order posted


def broken(n: int) -> list[int]:
    """The chunks the fake breaks: with one GPU worker, chunks are posted in order."""
    return [i for i in range(n) if i % EVERY == 0]


def seeds_posted(fake: Any) -> dict[str, list[int]]:
    posted: defaultdict[str, list[int]] = defaultdict(list)
    for prompt in fake.stats()["prompts"]:
        for node in prompt.values():
            if node.get("class_type") == "VibeVoiceTTS":
                posted[node["inputs"]["text"]].append(int(node["inputs"]["seed"]))
    return dict(posted)


def run(broker_settings: Settings, worker_pool: WorkerPool, fake_comfy_processes: Any, verify: str) -> Any:
    (fake,) = fake_comfy_processes(1)
    fake.configure(speech=True, garble_every=EVERY)
    gpu = worker_pool.start(broker_settings.with_(comfy_url=fake.url), queues="narrator.gpu", name="gpu")
    cpu = worker_pool.start(broker_settings, queues="narrator.cpu", name="cpu")
    request = {"text": TEXT, "model": "vibevoice-large", "verify": verify}
    handle = jobs.submit(request, broker_settings)
    result = handle.wait(timeout=240)
    return fake, gpu, cpu, handle, result


def test_broken_chunks_are_synthesized_again_and_the_best_kept(
    broker_settings: Settings, worker_pool: WorkerPool, fake_comfy_processes: Any
) -> None:
    fake, gpu, cpu, handle, result = run(broker_settings, worker_pool, fake_comfy_processes, "retry")
    manifest = handle.job_store.manifest()
    n = len(manifest.chunks)
    bad = broken(n)
    assert n >= 4 and len(bad) >= 2

    v = result.verification
    assert v is not None and (v.mode, v.recogniser) == ("retry", "pocketsphinx"), v
    job = handle.job_store
    checks = {i: job.get_json(job.check_key(i)) for i in range(n)}
    assert (v.checked, v.retried, v.attempts, v.passed, v.failing) == (n, len(bad), n + len(bad), n, []), checks
    # Each broken chunk went to ComfyUI twice, with the model's seed and then the next; the rest once.
    seeds = seeds_posted(fake)
    assert [i for i, c in enumerate(manifest.chunks) if len(seeds[c.text]) == 2] == bad
    assert all(seeds[manifest.chunks[i].text] == [42, 43] for i in bad)
    assert sum(len(s) for s in seeds.values()) == n + len(bad)
    job = handle.job_store
    kept = [Verdict.model_validate(job.get_json(job.check_key(i))) for i in range(n)]
    assert [k.kept for k in kept] == [1 if i in bad else 0 for i in range(n)]
    assert all(not job.get_json(job.check_key(i, 0))["passed"] for i in bad)
    # Checked on the CPU worker: the GPU worker synthesized and never listened.
    assert cpu.logs().count("chunk checked") == n + len(bad), worker_pool.logs()
    assert "chunk checked" not in gpu.logs()

    store = open_store(broker_settings)
    samples, rate = sf.read(io.BytesIO(store.get_bytes(result.output_key)), dtype="float32")
    duration = len(samples) / rate
    assert duration == pytest.approx(result.duration_seconds, abs=0.05)
    # Word captions: every word of the text, in order, inside the output.
    vtt = store.get_bytes(job.captions_key("words.vtt")).decode()
    cues = [block.split("\n") for block in vtt.split("\n\n")[1:] if block.strip()]
    assert [line[1] for line in cues] == [piece for c in manifest.chunks for piece, _ in tokens(c.text)]
    times = [_seconds(line[0].split(" --> ")[0]) for line in cues]
    assert times == sorted(times) and times[-1] < duration
    assert set(result.captions) == {"srt", "vtt", "words.srt", "words.vtt", "phrases.srt", "phrases.vtt"}


def test_report_lists_the_failing_chunks_where_they_are_in_the_output(
    broker_settings: Settings, worker_pool: WorkerPool, fake_comfy_processes: Any
) -> None:
    fake, _, _, handle, result = run(broker_settings, worker_pool, fake_comfy_processes, "report")
    chunks = handle.job_store.manifest().chunks
    n, bad = len(chunks), broken(len(chunks))
    v = result.verification
    assert v is not None and (v.checked, v.retried, v.attempts, v.passed) == (n, 0, n, n - len(bad)), v
    assert [f.index for f in v.failing] == bad
    assert [f.text for f in v.failing] == [chunks[i].caption for i in bad]
    assert all(f.reasons and f.score is not None and f.score < 0.9 for f in v.failing)
    assert all(f.start < f.end <= result.duration_seconds for f in v.failing)
    assert v.failing[0].start < 1.0 and v.failing[1].start > v.failing[0].end
    assert Counter(len(s) for s in seeds_posted(fake).values()) == {1: n}  # nothing synthesized again
    assert "words.vtt" in result.captions


def _seconds(stamp: str) -> float:
    h, m, s = stamp.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)
