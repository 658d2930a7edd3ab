"""A synthesis trial on a ComfyUI model: time to first chunk, speed, real-time factor, VRAM.

Two texts go through the real engine (:class:`~narrator.engines.comfyui.ComfyEngine`,
the worker's own ``render``), one after the other:

1. the first text: the time from the request to its chunk in hand (and stored, when a
   store is given) is the *time to first chunk*. It includes uploading the voice and,
   when the server has not loaded the model yet, loading it.
2. the timed text (different, so ComfyUI cannot answer from its cache): its wall time
   gives *seconds of synthesis per 100 words* and the *real-time factor* (synthesis
   time / audio time; below 1 is faster than real time), with the model loaded.

VRAM comes from ``/system_stats`` (device ``vram_total - vram_free``: the whole GPU,
other processes included): a sample before and after, and with ``vram_interval`` a
poll every that many seconds in between, whose highest value is the peak seen, not
necessarily the true peak. ``narrator doctor --synthesize`` and ``bench/gpu.py`` use this.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from types import TracebackType

from ..comfy.client import ClientConfig, ComfyClient, Deadline
from ..comfy.system import vram_used
from ..engines import resolve_params
from ..engines.base import SynthesisInput
from ..engines.comfyui import ComfyEngine
from ..errors import EngineUnavailable
from ..models import ModelSpec
from ..settings import Settings
from ..storage import ObjectStore

FIRST_TEXT = "This short sentence checks that the server can speak before it takes real work."
TIMED_TEXT = "A second sentence, about as long as the first, measures the speed once the model is loaded."


@dataclass(frozen=True)
class TrialResult:
    model: str
    first_chunk_seconds: float
    """Request to first chunk in hand (stored, with a store)."""
    first_chunk_at: float
    """``time.perf_counter()`` when the first chunk was in hand (stored): for cold starts timed from elsewhere."""
    words: int
    """Words in the timed text."""
    synth_seconds: float
    """Wall time of the timed text, request to audio in hand."""
    audio_seconds: float
    """Length of the timed text's audio."""
    vram_before: int | None = None
    vram_after: int | None = None
    vram_peak: int | None = None
    """The highest of every sample taken; None when the server shows no GPU."""
    vram_samples: int = 0

    @property
    def seconds_per_100_words(self) -> float:
        return self.synth_seconds / self.words * 100 if self.words else math.nan

    @property
    def real_time_factor(self) -> float:
        return self.synth_seconds / self.audio_seconds if self.audio_seconds > 0 else math.nan


def words(text: str) -> int:
    return len(text.split())


def spoken(spec: ModelSpec, text: str) -> str:
    """``text`` as speaker 1 in the model's speaker format (what a chunk of a plain text becomes)."""
    try:
        return spec.speaker_format.format(n=1, text=text)
    except (KeyError, IndexError, ValueError):
        return text


class VramWatch:
    """VRAM in use on the server's GPU, from ``/system_stats``: on demand, and polled in a thread while entered."""

    def __init__(self, url: str, timeout: float, interval: float | None = None) -> None:
        self._client = ComfyClient(url, ClientConfig(request_timeout=min(5.0, timeout), connect_timeout=2.0))
        self._timeout = timeout
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.samples: list[int] = []

    def sample(self) -> int | None:
        """One reading; None when the server shows no GPU or does not answer."""
        try:
            used = vram_used(self._client.system_stats(Deadline(min(5.0, self._timeout))))
        except EngineUnavailable:
            return None
        if used is not None:
            with self._lock:
                self.samples.append(used)
        return used

    @property
    def peak(self) -> int | None:
        with self._lock:
            return max(self.samples, default=None)

    def __enter__(self) -> VramWatch:
        if self._interval:
            self._stop.clear()
            self._thread = threading.Thread(target=self._poll, name="vram-watch", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10.0)  # one sample at most is in flight, and it has a 5 s deadline
            self._thread = None

    def _poll(self) -> None:
        interval = self._interval or 1.0
        while not self._stop.wait(interval):
            self.sample()

    def close(self) -> None:
        self._client.close()


def run_trial(
    spec: ModelSpec,
    settings: Settings,
    *,
    first_text: str = FIRST_TEXT,
    timed_text: str = TIMED_TEXT,
    store: ObjectStore | None = None,
    vram_interval: float | None = None,
) -> TrialResult:
    """Synthesize ``first_text`` then ``timed_text`` on ``spec`` at ``settings.comfy_url``, and measure.

    Each chunk is bounded by ``settings.comfy_timeout``, like a worker's. Engine errors propagate.
    """
    engine = ComfyEngine(spec, settings)
    params = resolve_params(spec, {})  # what a job without settings gets (engines take settings as given)
    watch = VramWatch(settings.comfy_url, settings.comfy_timeout, vram_interval)
    try:
        before = watch.sample()
        with watch:
            started = time.perf_counter()
            first = engine.render(SynthesisInput(text=spoken(spec, first_text), params=params, job_id="trial"))
            if store is not None:
                store.put_bytes(f"trial/{spec.name}/first.flac", first.flac, "audio/flac")
            first_at = time.perf_counter()
            timed = engine.render(SynthesisInput(text=spoken(spec, timed_text), params=params, job_id="trial", index=1))
            synth = time.perf_counter() - first_at
            if store is not None:
                store.put_bytes(f"trial/{spec.name}/timed.flac", timed.flac, "audio/flac")
        after = watch.sample()
        return TrialResult(
            model=spec.name,
            first_chunk_seconds=first_at - started,
            first_chunk_at=first_at,
            words=words(timed_text),
            synth_seconds=synth,
            audio_seconds=timed.seconds,
            vram_before=before,
            vram_after=after,
            vram_peak=watch.peak,
            vram_samples=len(watch.samples),
        )
    finally:
        engine.close()
        watch.close()
