"""Admission: everything that can be checked about a request before work is queued.

Schema checks are in :mod:`narrator.request`; here come the checks that need the
settings and the model registry: text size, model, the job's settings resolved once
(the model's defaults under the request's, checked by the model's engine), voice
inputs decoded as audio, URLs checked against the fetch policy, the text chunked.

:func:`admit` is the one admission. The producer (``submit()``) runs it before anything
is queued; stage-input stages from its result. When both run in one process (in-process
runs) the producer hands its result over (:func:`hand_over`), so nothing is admitted,
decoded or chunked twice; a request from another process or language is admitted once
by stage-input itself.
"""

from __future__ import annotations

import importlib.util
import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import audio
from ..audio.types import Audio
from ..chunker import Boundary, Chunk, chunk_text
from ..engines import resolve_params
from ..errors import AudioError, FetchError, InvalidRequest
from ..models import ModelRegistry, ModelSpec
from ..request import JobRequest, VoiceInput
from ..settings import Settings
from .fetch import check_url
from .inline import inline_bytes

if TYPE_CHECKING:
    from .book import BookPlan

FORMATS = ("wav", "flac", "mp3", "opus", "m4b")
#: What a ``data:`` URI's media type promises; the content must keep the promise.
DECLARED_AUDIO = {
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/vnd.wave": "wav",
    "audio/flac": "flac",
    "audio/x-flac": "flac",
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/ogg": "ogg",
    "audio/opus": "ogg",
}


@dataclass(frozen=True)
class Admitted:
    """A request that passed admission, with what was resolved on the way: all staging needs."""

    request: JobRequest
    model: ModelSpec
    params: dict[str, Any]
    """The job's settings, resolved once: the model's defaults under the request's voice settings,
    converted and range-checked by the model's engine. The manifest carries them; engines trust them."""
    chunks: list[Chunk]
    """The text, chunked as the model wants it (chunking is where SSML and scripts are checked)."""
    voices: dict[int, Audio] = field(default_factory=dict)
    """Speaker -> each base64 voice, decoded (base64 and audio) and checked, so staging decodes
    neither again. URL voices are fetched, and stored ones read, at staging."""
    book: BookPlan | None = None
    """A ``document`` request's book: read (and fetched) once, here."""
    chapter_of: list[int] = field(default_factory=list)
    """A book's chunks: the chapter (0-based, in ``book.chapters``) each chunk belongs to."""

    @property
    def text(self) -> str:
        """What is spoken: the request's text, or the book's chapters laid out."""
        return self.book.text if self.book is not None else str(self.request.text)


def admit(data: Any, settings: Settings, registry: ModelRegistry) -> Admitted:
    """Check ``data`` (a request or its JSON) and resolve what staging needs; InvalidRequest names the field."""
    request = JobRequest.parse(data)
    if request.text is not None and len(request.text) > settings.max_text_chars:
        raise InvalidRequest(
            f"{len(request.text)} characters is over the limit of {settings.max_text_chars}", field="text"
        )
    model = _model(request, settings, registry)
    # The one place a job's settings are resolved: the engine's rules, not a second copy of them here.
    params = resolve_params(model, request.voice_settings.given())
    _fits_model(request, model)
    voices: dict[int, Audio] = {}
    for speaker, voice in request.voice_inputs().items():
        decoded = check_voice(voice, settings)
        if decoded is not None:
            voices[speaker] = decoded
    if request.output.url_expires and request.output.url_expires > settings.presign_max_seconds:
        raise InvalidRequest(
            f"{request.output.url_expires} s is longer than the maximum of {settings.presign_max_seconds} s",
            field="output.url_expires",
        )
    if request.output.format not in FORMATS:
        raise InvalidRequest(f"unsupported format {request.output.format!r}", field="output.format")
    if request.output.format == "m4b" and importlib.util.find_spec("av") is None:
        raise InvalidRequest("m4b needs the 'book' extra: pip install 'narrator[book]'", field="output.format")
    book: BookPlan | None = None
    chapter_of: list[int] = []
    if request.document is None:
        chunks = _chunks(str(request.text), request, model)
    else:
        from .book import plan_book  # the document readers load only for a book (markdown-it, ...)

        book = plan_book(request, settings)
        request = in_book_language(request, book, model)
        chunks, chapter_of = chunk_book(book, request, model)
    if not any(c.spoken.strip() for c in chunks):
        raise InvalidRequest("nothing to speak", field="text" if book is None else "document")
    return Admitted(request=request, model=model, params=params, chunks=chunks, voices=voices, book=book,
                    chapter_of=chapter_of)


def _chunks(text: str, request: JobRequest, model: ModelSpec) -> list[Chunk]:
    return chunk_text(
        text,
        model.max_chunk_chars,
        min_chars=model.min_chunk_chars,
        normalize=request.normalize,
        speakers=request.speakers,
        max_speakers=model.speakers,
        ssml=request.ssml,
        language=request.language,
    )


def in_book_language(request: JobRequest, book: BookPlan, model: ModelSpec) -> JobRequest:
    """A request that names no language reads a book in the book's own (its OPF says), when the
    model speaks it: numbers, the speech check and chunking then follow the book."""
    spoken = (book.language or "").split("-")[0].lower()
    if "language" in request.model_fields_set or not spoken or spoken not in model.languages:
        return request
    return request.model_copy(update={"language": spoken})


def chunk_book(book: BookPlan, request: JobRequest, model: ModelSpec) -> tuple[list[Chunk], list[int]]:
    """Each chapter chunked on its own (no chunk spans two), offsets into ``book.text``; the pause
    after a chapter's last chunk is the request's ``chapter_pause_ms``."""
    chunks: list[Chunk] = []
    chapter_of: list[int] = []
    offset = 0
    last = len(book.chapters) - 1
    for number, chapter in enumerate(book.chapters):
        mine = _chunks(chapter.text, request, model) if chapter.text.strip() else []
        for i, c in enumerate(mine):
            closing = i == len(mine) - 1 and number < last
            chunks.append(replace(
                c, index=len(chunks), start=c.start + offset, end=c.end + offset,
                boundary=Boundary.HEADING if closing else c.boundary,
                pause_ms=request.book.chapter_pause_ms if closing else c.pause_ms))
            chapter_of.append(number)
        offset += len(chapter.text) + 2  # the blank line BookPlan.text puts between chapters
    return chunks, chapter_of


#: Admissions handed from a producer to the stage-input task of the same process, by job id.
_handed: OrderedDict[str, Admitted] = OrderedDict()
_handed_lock = threading.Lock()
#: In-process jobs stage moments after they are submitted; a handover nobody took (its job
#: crashed before staging) must not pin its voices for ever.
_HANDED_MAX = 8


def hand_over(job_id: str, admitted: Admitted) -> None:
    """Give ``admitted`` to the stage-input of ``job_id`` in this process (in-process runs only:
    a handover for a job that stages elsewhere is never taken)."""
    with _handed_lock:
        _handed[job_id] = admitted
        while len(_handed) > _HANDED_MAX:
            _handed.popitem(last=False)


def take_handed(job_id: str) -> Admitted | None:
    """The admission handed over for ``job_id`` in this process, once; None: admit the raw request."""
    with _handed_lock:
        return _handed.pop(job_id, None)


def _model(request: JobRequest, settings: Settings, registry: ModelRegistry) -> ModelSpec:
    name = request.model or settings.default_model
    spec = registry.get(name)
    if spec is None:
        known = ", ".join(registry.names()) or "none"
        raise InvalidRequest(f"unknown model {name!r} (available: {known})", field="model")
    return spec


def _fits_model(request: JobRequest, model: ModelSpec) -> None:
    """The language and speakers the request asks for are ones the model has."""
    spoken = request.language.split("-")[0].lower()
    if model.languages and spoken not in model.languages:
        raise InvalidRequest(
            f"model {model.name!r} speaks {', '.join(model.languages)}, not {request.language!r}", field="language"
        )
    for name, number in (request.speakers or {}).items():
        if number > model.speakers:
            raise InvalidRequest(
                f"speaker {number} is more than model {model.name!r} voices ({model.speakers})",
                field=f"speakers.{name}",
            )
    for speaker, voice in request.voice_inputs().items():
        if speaker > model.speakers:
            raise InvalidRequest(f"model {model.name!r} voices at most {model.speakers} speakers", field=voice.field)


def check_voice(voice: VoiceInput, settings: Settings) -> Audio | None:
    """Reject a voice that cannot be used, without fetching anything; a base64 voice, decoded."""
    try:
        if voice.kind == "url":
            check_url(voice.value, field=voice.field, allow=settings.fetch_allow)
        elif voice.kind == "name":
            if named_voice_path(voice.value, settings) is None:
                raise InvalidRequest(f"no stored voice named {voice.value!r}", field=voice.field)
        else:
            return audio.validate_voice(
                decode_base64(voice, settings),
                field=voice.field,
                max_seconds=settings.max_voice_seconds,
                expect=declared_format(voice),
            )
    except (AudioError, FetchError) as exc:
        raise InvalidRequest(str(exc), field=voice.field) from exc
    return None


def decode_base64(voice: VoiceInput, settings: Settings) -> bytes:
    # voice and voices.N take three kinds of value; say which, or "../x" reads as a base64 problem.
    hint = "" if voice.field == "reference_audio" else " (a voice is an http(s) URL, a stored voice name or base64)"
    return inline_bytes(voice.value, field=voice.field, max_bytes=settings.max_voice_bytes, what="voice", hint=hint)


def declared_format(voice: VoiceInput) -> str | None:
    """The audio format a ``data:`` URI declares (``data:audio/wav;base64,...``), if it names one."""
    if not voice.value.startswith("data:"):
        return None
    media = voice.value[5:].partition(",")[0].split(";")[0].strip().lower()
    if media in ("", "application/octet-stream") or (media.startswith("audio/") and media not in DECLARED_AUDIO):
        return None  # no promise made: the content decides
    if media not in DECLARED_AUDIO:
        raise InvalidRequest(f"the data URI declares {media[:40]!r}, not audio", field=voice.field)
    return DECLARED_AUDIO[media]


def named_voice_path(name: str, settings: Settings) -> Path | None:
    folder = settings.workflows_dir / "voices"
    for ext in (".wav", ".flac"):
        path = folder / f"{name}{ext}"
        # The name matched VOICE_NAME (no separators), so it cannot leave the folder.
        if path.is_file():
            return path
    return None

