"""The job layer's fixtures: a file store in a temporary folder, a tmp workflows folder, a tone engine.

Admission resolves a model's settings through its engine class (``engines.resolve_params``),
and the model files here name the embedded engine for that: its ``check_params`` needs no
model loaded. Synthesis never builds an engine from the registry: ``synthesize_chunk`` takes
``engine_for``, and the tests pass the :class:`~tests.job.tone.ToneEngine`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from narrator.job.admission import Admitted, admit
from narrator.job.concatenate import Joined, join_job
from narrator.job.stage import stage
from narrator.job.store import Manifest
from narrator.job.synthesize import ChunkOutcome, synthesize_chunk
from narrator.models import ModelRegistry
from narrator.settings import Settings

from .tone import DAY, RATE, WEEK, RecordingStore, ToneEngine, sine, wav_bytes

TONE_MODEL = f"""
name = "tone"
engine = "embedded"
workflow = "tone.json"
sample_rate = {RATE}
speakers = 3
voice_cloning = true
speaker_format = "Speaker {{n}}: {{text}}"
max_chunk_chars = 40
languages = ["en"]
parameters = ["speed", "temperature"]

[defaults]
speed = 1.0
temperature = 0.8
"""

#: One speaker, no cloning, larger chunks: the shape of the shipped ``local`` model.
MONO_MODEL = f"""
name = "mono"
engine = "embedded"
sample_rate = {RATE}
max_chunk_chars = 200
min_chunk_chars = 20
parameters = ["speed", "temperature"]

[defaults]
speed = 1.0
temperature = 1.0
"""

#: A model file whose default its engine refuses: the model file's fault, not the request's.
BAD_DEFAULT_MODEL = MONO_MODEL.replace('"mono"', '"bad-default"').replace("temperature = 1.0", "temperature = -1.0")

@pytest.fixture
def workflows(tmp_path: Path) -> Path:
    folder = tmp_path / "workflows"
    (folder / "voices").mkdir(parents=True)
    (folder / "tone.toml").write_text(TONE_MODEL)
    (folder / "tone.json").write_text('{"1": {"class_type": "Tone", "inputs": {}, "_meta": {"title": "Tone"}}}')
    (folder / "tone-copy.toml").write_text(TONE_MODEL.replace('"tone"', '"tone-copy"'))
    (folder / "mono.toml").write_text(MONO_MODEL)
    (folder / "bad-default.toml").write_text(BAD_DEFAULT_MODEL)
    (folder / "voices" / "narrator-en.wav").write_bytes(wav_bytes(sine(0.5, 180.0)))
    return folder


@pytest.fixture
def settings(tmp_path: Path, workflows: Path) -> Settings:
    return Settings(
        storage_url=(tmp_path / "store").as_uri(),
        workflows_dir=workflows,
        default_model="tone",
        max_text_chars=2000,
        presign_default_seconds=DAY,
        presign_max_seconds=WEEK,
        audio_b64_max_bytes=1_000_000,
    )


@pytest.fixture
def registry(settings: Settings) -> ModelRegistry:
    return ModelRegistry.from_dir(settings.workflows_dir)


@pytest.fixture
def store(tmp_path: Path) -> RecordingStore:
    # The same folder as settings.storage_url: what open_store(settings) would open.
    return RecordingStore(tmp_path / "store")


@pytest.fixture
def engine() -> ToneEngine:
    return ToneEngine()


@pytest.fixture
def job_id() -> str:
    # A fresh id per test: synthesize keeps a process-wide voice cache keyed by storage key.
    return uuid.uuid4().hex


def new_job_id() -> str:
    return uuid.uuid4().hex


@pytest.fixture
def admitted_for(settings: Settings, registry: ModelRegistry) -> Callable[[Any], Admitted]:
    return lambda request: admit(request, settings, registry)


@pytest.fixture
def staged(
    settings: Settings, registry: ModelRegistry, store: RecordingStore
) -> Callable[..., Manifest]:
    """Admit and stage a request as a job (a fresh job id unless one is given)."""

    def run(request: Any, job_id: str | None = None) -> Manifest:
        return stage(job_id or new_job_id(), admit(request, settings, registry), settings, store)

    return run


@pytest.fixture
def synthesized(
    staged: Callable[..., Manifest], store: RecordingStore, engine: ToneEngine
) -> Callable[..., tuple[Manifest, list[ChunkOutcome]]]:
    """Stage a request and synthesize every chunk with the tone engine (in ``order``, default in turn)."""

    def run(request: Any, order: list[int] | None = None) -> tuple[Manifest, list[ChunkOutcome]]:
        manifest = staged(request)
        indexes = order if order is not None else range(len(manifest.chunks))
        outcomes = [synthesize_chunk(manifest.job_id, i, manifest, store, lambda: engine) for i in indexes]
        return manifest, outcomes

    return run


@pytest.fixture
def joined(
    synthesized: Callable[..., tuple[Manifest, list[ChunkOutcome]]], store: RecordingStore
) -> Callable[..., tuple[Manifest, Joined]]:
    """Stage, synthesize and join a request."""

    def run(request: Any, order: list[int] | None = None) -> tuple[Manifest, Joined]:
        manifest, _ = synthesized(request, order)
        return manifest, join_job(manifest, store)

    return run

