"""What the RunPod handler takes and returns: pure functions over plain data.

The seed-era worker's contract still holds: input ``text``, ``reference_audio``,
``reference_audio_url``, ``voice_settings``; output ``success``, ``audio_b64``,
``duration_seconds``, ``seed_used``, ``reference_used``, ``text_length``,
``metrics``; failures as ``{"error": "..."}`` (RunPod's convention). Whether the
audio goes inline is decided with every other consumer's, in :mod:`narrator.job.delivery`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidRequest
from ..result import JobResult, Progress

#: Input fields that steer the handler, not the job; removed before the request is validated.
HANDLER_FIELDS = ("stream",)
MAX_ERROR_CHARS = 2000
_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


@dataclass(frozen=True)
class HandlerInput:
    request: dict[str, Any]
    stream: bool = False


def split_input(raw: Any) -> HandlerInput:
    """Separate handler options from the job request (JobRequest forbids unknown fields)."""
    if not isinstance(raw, Mapping):
        raise InvalidRequest(f"must be a JSON object, not {type(raw).__name__}", field="input")
    request = {k: v for k, v in raw.items() if k not in HANDLER_FIELDS}
    stream = raw.get("stream", False)
    if not isinstance(stream, bool):
        raise InvalidRequest("must be true or false", field="stream")
    return HandlerInput(request=request, stream=stream)


def success_output(result: JobResult, handler_seconds: float) -> dict[str, Any]:
    """``result`` as RunPod returns it; ``audio_b64`` as read (``JobHandle.result(inline=True)``)."""
    out = result.to_json()
    out["metrics"]["handler_time"] = round(handler_seconds, 3)
    return out


def error_output(message: str, secrets: Iterable[str] = ()) -> dict[str, Any]:
    return {"error": scrub(message, secrets)}


def scrub(message: str, secrets: Iterable[str] = ()) -> str:
    """No credentials in anything we hand back: configured secrets and URL userinfo are masked."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        message = message.replace(secret, "***")
    message = _USERINFO.sub("***@", message)
    if len(message) > MAX_ERROR_CHARS:
        message = message[: MAX_ERROR_CHARS - 3] + "..."
    return message


def progress_output(progress: Progress) -> dict[str, Any]:
    return {
        "job_id": progress.job_id,
        "state": progress.state,
        "chunks_done": progress.chunks_done,
        "chunks_total": progress.chunks_total,
        "audio_seconds": round(progress.audio_seconds, 3),
    }


def chunk_output(job_id: str, index: int, total: int, seconds: float, url: str) -> dict[str, Any]:
    """One streamed chunk: its audio is final (FLAC at the model's rate) and it follows all before it."""
    return {
        "job_id": job_id,
        "chunk": index,
        "chunks_total": total,
        "audio_url": url,
        "format": "flac",
        "duration_seconds": round(seconds, 3),
    }
