"""Checks on a job's output audio."""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf
from scipy import signal

from narrator.storage import ObjectStore


def assert_chunks_in_order(store: ObjectStore, job_id: str, n: int, output: np.ndarray, rate: int) -> None:
    """Each chunk's audio is found in the output, after the previous chunk's."""
    position = 0
    pending = 0
    for i in range(n):
        chunk, chunk_rate = sf.read(io.BytesIO(store.get_bytes(f"jobs/{job_id}/chunks/{i:05d}.flac")), dtype="float32")
        assert chunk_rate == rate
        # Find half a second from the middle of the chunk in the output, after the
        # previous chunk. Long enough that the limiter's touch on peaks does not matter.
        width, step = rate // 2, rate // 10
        starts = range(0, max(1, len(chunk) - width), step)
        start = max(starts, key=lambda s: float(np.sum(chunk[s : s + width] ** 2)))
        probe = chunk[start : start + width]
        # The chunk follows the previous one closely (the rest of it, then a pause), so
        # look only there: an identical chunk later on must not match.
        rest = output[position : position + pending + len(chunk) + 3 * rate]
        corr = signal.correlate(rest, probe, mode="valid", method="fft")
        energy = signal.fftconvolve(rest**2, np.ones(len(probe)), mode="valid")
        norm = np.sqrt(np.maximum(energy, 0)) * np.linalg.norm(probe)
        score = corr / np.maximum(norm, 1e-9)
        best = int(np.argmax(score))
        assert score[best] > 0.8, f"chunk {i} not found after sample {position} (score {score[best]:.2f})"
        position += best + len(probe)
        pending = len(chunk) - (start + len(probe))
