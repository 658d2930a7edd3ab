"""Synthesize one chunk of a staged job, or reuse its audio from the cache."""

from __future__ import annotations

import io
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import soundfile as sf

from ..engines import Engine, SynthesisInput, Voice
from ..errors import AudioError, ObjectNotFound
from ..storage import ObjectStore
from .store import JobStore, Manifest, cache_key
from .verify import attempt_of

log = logging.getLogger(__name__)

# Voices by storage key: a worker process serves many chunks of one job, in several threads in-process.
_voice_cache: OrderedDict[str, Voice] = OrderedDict()
_voice_lock = threading.Lock()
_VOICE_CACHE_SIZE = 16


@dataclass(frozen=True)
class ChunkOutcome:
    index: int
    seconds: float
    cached: bool
    synth_seconds: float = 0.0


def synthesize_chunk(
    job_id: str, index: int, manifest: Manifest, store: ObjectStore, engine_for: Callable[[], Engine],
    attempt: int = 0,
) -> ChunkOutcome:
    """``engine_for`` is called only on a cache miss, so a fully cached job never loads a model.

    A job whose chunks are checked (``manifest.verify``) keeps each attempt in the cache only:
    the check decides which becomes the chunk (narrator.job.verify.keep).
    """
    entry = manifest.chunks[index]
    params, digest = attempt_of(manifest, entry, attempt)
    cache = cache_key(digest)
    started = time.perf_counter()
    hit = _cached(store, cache, index)
    if hit is not None:
        data, seconds = hit
        cached = True
    else:
        voices = {n: _voice(store, key) for n, key in manifest.voices.items()}
        # A chunk has one speaker, so staging wrote it as slot 1 (chunker.slots): slot 1 carries its voice.
        speakers = (entry.speaker,)
        item = SynthesisInput(
            text=entry.text, voices=voices, speakers=speakers, params=params, job_id=job_id, index=index
        )
        clip = engine_for().render(item)
        data, seconds, cached = clip.flac, clip.seconds, False
        # Cache first: a crash between the two writes leaves a reusable chunk, not a hole.
        store.put_bytes(cache, data, "audio/flac")
    if manifest.verify == "off":
        JobStore(store, job_id).put_chunk(index, data, seconds, cached)
    outcome = ChunkOutcome(index=index, seconds=seconds, cached=cached, synth_seconds=time.perf_counter() - started)
    log.info(
        "chunk done",
        extra={"job_id": job_id, "chunk": index, "attempt": attempt, "seconds": round(seconds, 3), "cached": cached},
    )
    return outcome


def _cached(store: ObjectStore, key: str, index: int) -> tuple[bytes, float] | None:
    """The cached audio and its seconds, or None: a miss, or an entry gc removed or a crash left unreadable."""
    try:
        data = store.get_bytes(key)
    except ObjectNotFound:
        return None
    try:
        return data, _duration(data, index)
    except AudioError as exc:
        log.warning("cache entry unreadable, synthesizing again", extra={"chunk": index, "error": str(exc)})
        return None


def _voice(store: ObjectStore, key: str) -> Voice:
    with _voice_lock:
        voice = _voice_cache.get(key)
    if voice is None:
        voice = Voice(store.get_bytes(key))  # outside the lock: a slow read must not hold up other chunks
        with _voice_lock:
            _voice_cache[key] = voice
            while len(_voice_cache) > _VOICE_CACHE_SIZE:
                _voice_cache.popitem(last=False)
    return voice


def _duration(data: bytes, index: int) -> float:
    try:
        return float(sf.info(io.BytesIO(data)).duration)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError(f"chunk {index}: stored audio is unreadable: {exc}") from exc
