"""How a finished job's audio reaches whoever asked: presigned URLs, and inline base64 where wanted.

One decision, :func:`delivery`, for every consumer: the upload step (URL lifetime),
the RunPod output and :meth:`narrator.jobs.JobHandle.result` (inline audio, URLs of
streamed chunks). From the request's ``output`` and the settings:

- every URL handed out for the job (``audio_url``, ``captions_url``, streamed chunks)
  lives ``output.url_expires`` seconds, by default ``NARRATOR_PRESIGN_DEFAULT_SECONDS``,
  at most ``NARRATOR_PRESIGN_MAX_SECONDS``;
- an answer that carries audio inline (the RunPod output; ``JobHandle.result(inline=True)``)
  holds it in ``audio_b64`` unless the request said ``output.audio_b64: false``, while the
  audio is at most ``NARRATOR_AUDIO_B64_MAX_BYTES``. Unset and ``true`` mean the same.

Inline audio is read from the stored output when an answer is made: the result record
and the Celery result (the result backend) never carry it.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from ..request import OutputSpec
from ..result import JobResult
from ..settings import Settings
from .store import JobStore


@dataclass(frozen=True)
class Delivery:
    inline: bool
    """The request lets answers carry the audio inline."""
    inline_max_bytes: int
    url_expires: int
    """Seconds every URL handed out for the job stays valid."""

    def inlines(self, size: int) -> bool:
        """Whether audio of ``size`` bytes goes inline."""
        return self.inline and size <= self.inline_max_bytes


def delivery(output: OutputSpec, settings: Settings) -> Delivery:
    expires = output.url_expires or settings.presign_default_seconds
    return Delivery(
        inline=output.audio_b64 is not False,
        inline_max_bytes=settings.audio_b64_max_bytes,
        url_expires=max(1, min(int(expires), settings.presign_max_seconds)),
    )


def with_inline_audio(result: JobResult, job: JobStore, settings: Settings) -> JobResult:
    """``result`` with ``audio_b64`` filled from the stored output, as its request and the cap allow."""
    wanted = delivery(job.manifest().request.output, settings)
    audio = inline_audio(job, result.output_key, wanted)
    return result.model_copy(update={"audio_b64": audio})


def inline_audio(job: JobStore, key: str, wanted: Delivery) -> str | None:
    """The object at ``key``, base64, if it goes inline; its size is checked before it is read."""
    if not wanted.inline or not wanted.inlines(job.objects.size(key)):
        return None
    data = job.objects.get_bytes(key)
    return base64.b64encode(data).decode("ascii") if wanted.inlines(len(data)) else None
