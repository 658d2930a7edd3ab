"""ComfyUI engine overhead: from ComfyUI's last word on a prompt to the chunk stored.

A fake ComfyUI (real HTTP + websocket on loopback, synthesis time 0) runs the
vibevoice-large workflow. The worker's own chunk step (``synthesis.synthesize_chunk``)
runs against a file store: ComfyEngine.render follows the prompt on the websocket,
downloads the FLAC with /view, checks it (header and last frames; it is stored as
ComfyUI wrote it, not decoded and encoded again) and deletes the history entry; then
the chunk goes to the cache and the job, and its done marker is written. Measured per
chunk: the fake's ``time.perf_counter()`` as it sends ``executing {node: null}`` to the
moment the done marker is written.

Two chunk sizes: a typical one (40 words, about 13 s of audio) and a longest one
(200 words, the 1200-character maximum, about 70 s), whose 2.6 MB of FLAC would
cost about 80 ms to decode and encode again.

Target: median <= 20 ms. Baseline: 2000 ms, the seed-era worker's /history poll
period (its worst case; on average it noticed a finished prompt 1000 ms late).
Run: python -m bench.bench_comfy
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the fake lives in tests/
    sys.path.insert(0, str(ROOT))

from narrator.engines.comfyui import ComfyEngine  # noqa: E402
from narrator.job.store import ChunkEntry, Manifest  # noqa: E402
from narrator.job.synthesize import synthesize_chunk  # noqa: E402
from narrator.models import load_model_file  # noqa: E402
from narrator.request import JobRequest  # noqa: E402
from narrator.settings import Settings  # noqa: E402
from narrator.storage import open_store  # noqa: E402
from tests.fakes.comfyui import FakeComfy  # noqa: E402

SIZES = ((40, 50), (200, 12))  # (words per chunk, chunks measured)
WARM = 3
BASELINE_MS = 2000.0
WORDS = "the quick brown fox jumps over a lazy dog while seven tired narrators read aloud".split()

Row = tuple[str, float, str, float | None, float | None]


def _text(i: int, words: int) -> str:
    picked = [WORDS[(i * 7 + k) % len(WORDS)] for k in range(words - 2)]
    return f"Speaker 1: Chunk {i}. " + " ".join(picked) + "."


def _manifest(words: int, chunks: int) -> Manifest:
    entries = [
        ChunkEntry(index=i, text=_text(i, words), start=0, end=0, boundary="paragraph", digest=f"bench{i:060d}")
        for i in range(chunks)
    ]
    return Manifest(
        job_id="0" * 32, request=JobRequest(text="bench"), model="vibevoice-large", params={}, text_length=0,
        format="wav", sample_rate=24000, chunks=entries,
    )


def measure(words: int, chunks: int) -> tuple[list[float], float]:
    spec = load_model_file(ROOT / "workflows" / "vibevoice-large.toml")
    manifest = _manifest(words, WARM + chunks)
    with FakeComfy() as fake, tempfile.TemporaryDirectory(prefix="narrator-bench-") as folder:
        settings = Settings(comfy_url=fake.url, comfy_timeout=30.0, storage_url=Path(folder).as_uri())
        store = open_store(settings)
        engine = ComfyEngine(spec, settings)
        try:
            latencies: list[float] = []
            audio_seconds = 0.0
            for i in range(WARM + chunks):
                outcome = synthesize_chunk(manifest.job_id, i, manifest, store, lambda: engine)
                done = time.perf_counter()
                finished = fake.stats.finished_at
                last_word = finished[next(reversed(finished))]
                assert not outcome.cached
                if i >= WARM:
                    latencies.append((done - last_word) * 1000)
                    audio_seconds += outcome.seconds
        finally:
            engine.close()
    return latencies, audio_seconds / chunks


def run() -> list[Row]:
    rows: list[Row] = []
    for words, chunks in SIZES:
        latencies, seconds = measure(words, chunks)
        median = statistics.median(latencies)
        p90 = statistics.quantiles(latencies, n=10)[-1]
        name = f"comfy: executing null -> chunk stored, {words} words/{seconds:.0f} s"
        rows.append((f"{name}, median", median, "ms", BASELINE_MS, median / BASELINE_MS))
        rows.append((f"{name}, p90", p90, "ms", None, None))
    return rows


if __name__ == "__main__":
    for figure, value, unit, baseline, ratio in run():
        extra = f"  baseline {baseline:.0f} {unit}  ratio {ratio:.4f}x" if baseline and ratio else ""
        print(f"{figure:<64} {value:8.2f} {unit}{extra}")
