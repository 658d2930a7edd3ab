"""The deployment smoke test's payload and its verdict on what the endpoint answered.

The check trusts nothing it can verify: the audio must decode, be PCM WAV, mono, at the sample
rate the result itself states, and last as long as the result says (a truncated file does not).
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import soundfile as sf

from .client_types import RemoteJob

SMOKE_TEXT = "This is the narrator deployment smoke test. One short sentence, then another."
SMOKE_INPUT: dict[str, Any] = {"text": SMOKE_TEXT, "output": {"format": "wav", "audio_b64": True}}
#: How far the file's length may be from ``duration_seconds``: rounding, not missing audio.
DURATION_SLACK = 0.1


@dataclass(frozen=True)
class SmokeVerdict:
    passed: bool
    summary: str
    """The facts when it passed; the reason when it did not."""


def check(job: RemoteJob) -> SmokeVerdict:
    output = job.output
    if not isinstance(output, Mapping):
        return _fail(f"the result is not an object: {type(output).__name__}")
    if output.get("success") is not True:
        return _fail(f"the result does not say success: {_brief(output)}")
    if output.get("format") != "wav":
        return _fail(f"asked for wav, the result says format {output.get('format')!r}")
    audio = output.get("audio_b64")
    if not isinstance(audio, str) or not audio:
        return _fail("the result has no audio_b64 (asked for it inline; is NARRATOR_AUDIO_B64_MAX_BYTES 0?)")
    try:
        data = base64.b64decode(audio, validate=True)
    except (binascii.Error, ValueError):
        return _fail("audio_b64 is not valid base64")
    return _check_wav(data, output, job)


def _check_wav(data: bytes, output: Mapping[str, Any], job: RemoteJob) -> SmokeVerdict:
    if not data:
        return _fail("the audio is empty")
    try:
        info = sf.info(io.BytesIO(data))
        frames = len(sf.read(io.BytesIO(data), dtype="int16")[0])
    except RuntimeError as exc:  # soundfile.LibsndfileError: not audio, or cut short
        return _fail(f"the audio does not decode: {exc}")
    rate = output.get("sample_rate")
    problems = [
        f"it is {info.format}, not WAV" if info.format != "WAV" else "",
        f"its samples are {info.subtype}, not PCM" if not info.subtype.startswith("PCM_") else "",
        f"it has {info.channels} channels, not 1" if info.channels != 1 else "",
        f"it is at {info.samplerate} Hz, the result says {rate}" if info.samplerate != rate else "",
        "it has no samples" if frames == 0 else "",
    ]
    seconds = frames / info.samplerate if info.samplerate else 0.0
    said = output.get("duration_seconds")
    if isinstance(said, int | float) and abs(seconds - said) > DURATION_SLACK:
        problems.append(f"it lasts {seconds:.2f} s, the result says {said:.2f} s (cut short?)")
    found = [p for p in problems if p]
    if found:
        return _fail("; ".join(found))
    model = (output.get("metrics") or {}).get("model", "?")
    times = _times(job)
    return SmokeVerdict(True, f"{seconds:.2f} s of mono {info.subtype} WAV at {info.samplerate} Hz "
                              f"({len(data)} bytes), model {model}{times}")


def _times(job: RemoteJob) -> str:
    if job.delay_ms is None or job.execution_ms is None:
        return ""
    return f", queued {job.delay_ms / 1000:.1f} s, ran {job.execution_ms / 1000:.1f} s"


def _fail(reason: str) -> SmokeVerdict:
    return SmokeVerdict(False, reason)


def _brief(output: Mapping[str, Any]) -> str:
    shown = {k: v for k, v in output.items() if k != "audio_b64"}
    text = repr(shown)
    return text if len(text) <= 300 else text[:297] + "..."
