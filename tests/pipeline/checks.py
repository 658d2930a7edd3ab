"""Checks on a job's output audio."""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf
from scipy import signal

from narrator.job.store import JobStore
from narrator.storage import ObjectStore


def chunk_starts(store: ObjectStore, job_id: str, n: int, output: np.ndarray, rate: int) -> list[int]:
    """Where each stored chunk starts in the output; fails unless every chunk is there, in order.

    Three half-second probes per chunk (at a fifth, half and four fifths of it), each looked
    for after the previous chunk; two of them must agree on where the chunk starts. A single
    probe is not enough for speech: the joiner's limiter reshapes a chunk's loudest, clipped
    moments, and one probe may land on them.
    """
    width = rate // 2
    starts: list[int] = []
    earliest = 0
    job = JobStore(store, job_id)
    for i in range(n):
        chunk, chunk_rate = sf.read(io.BytesIO(store.get_bytes(job.chunk_key(i))), dtype="float32")
        assert chunk_rate == rate and len(chunk) > 2 * width
        window = output[earliest : earliest + len(chunk) + 3 * rate]
        found = []
        for at in (len(chunk) // 5, len(chunk) // 2, len(chunk) * 4 // 5):
            probe = chunk[at : at + width]
            corr = signal.correlate(window, probe, mode="valid", method="fft")
            energy = signal.fftconvolve(window**2, np.ones(len(probe)), mode="valid")
            power = float(np.sum(probe**2))
            # Silence matches nothing (FFT noise over near-zero energy would score anything).
            loud = energy > 0.01 * power
            score = np.where(loud, corr / np.sqrt(np.where(loud, energy, 1.0) * power), 0.0)
            best = int(np.argmax(score))
            if score[best] > 0.9:
                found.append(earliest + best - at)
        agreed = [s for s in found if sum(abs(s - t) <= rate // 100 for t in found) >= 2]
        assert agreed, f"chunk {i} is not in the output after sample {earliest} (probes at {found})"
        starts.append(min(agreed))
        # The joiner may trim a chunk's edges (silence) but never drops its body.
        earliest = starts[-1] + len(chunk) * 9 // 10
    return starts


def assert_chunks_in_order(store: ObjectStore, job_id: str, n: int, output: np.ndarray, rate: int) -> None:
    """Each chunk's audio is found in the output, after the previous chunk's."""
    starts = chunk_starts(store, job_id, n, output, rate)
    assert starts == sorted(starts)
