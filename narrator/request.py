"""JobRequest: the one input contract for the CLI, ``submit()``, ``send_task`` and RunPod.

Schema checks (types, ranges, unknown fields) live here as a pydantic model; checks
that need settings or the model registry live in :mod:`narrator.job.admission`.
Either way a bad request becomes one :class:`~narrator.errors.InvalidRequest` whose
message starts with the dotted path of the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import InvalidRequest

AudioFormat = Literal["wav", "flac", "mp3", "opus", "m4b"]
DocumentFormat = Literal["epub", "html", "markdown", "text"]
#: "3-5", "1,4,7-9": chapters, 1-based.
CHAPTER_SPEC = r"^\s*\d+(\s*-\s*\d+)?(\s*,\s*\d+(\s*-\s*\d+)?)*\s*$"
#: Speaking rate, for the request's ``speed`` and for SSML ``<prosody rate>`` (the chunker).
SPEED_RANGE = (0.5, 2.0)
VOICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MODEL_NAME = r"^[a-z0-9][a-z0-9._-]{0,63}$"
_BAD_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def _not_bool(value: Any) -> Any:
    # Lax pydantic reads true as 1: a switch where a number belongs is a mistake, not a 1.
    if isinstance(value, bool):
        raise ValueError("Input should be a number, not true or false")
    return value


Int = Annotated[int, BeforeValidator(_not_bool)]
Float = Annotated[float, BeforeValidator(_not_bool)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class VoiceSettings(_Strict):
    """Synthesis settings. A model rejects any it does not support.

    Two kinds of bound, each written once. These Field bounds are the contract: the same
    for every model, published in the JSON schema other producers validate against, and
    checked first. A model's own limits are its engine's (``Engine.check_params``, run at
    admission): for ComfyUI the node's min/max from the pinned ``object_info``, for the
    embedded engine Piper's rules. The stricter one rules, so a value passes only inside
    both. On the shipped VibeVoice node the contract is the stricter everywhere (the node
    takes cfg_scale 0.1 to 50, inference_steps 1 to 500, seed to 2**64 - 1), and that is
    deliberate: the contract promises only what is useful on any model (the node recommends
    cfg_scale 1.3 and 10 steps; the widget's extremes are not settings to offer a job), and
    a 32-bit seed is exact in every producer's language. The node's range rules only where
    it is stricter than the contract. tests/core/test_request.py holds the table of which
    bound rules, per shipped model and setting.
    """

    seed: Int | None = Field(None, ge=0, le=2**32 - 1, description="0 to 4294967295")
    temperature: Float | None = Field(None, gt=0.0, le=2.0, description="above 0, at most 2")
    speed: Float | None = Field(None, ge=SPEED_RANGE[0], le=SPEED_RANGE[1], description="0.5 (slow) to 2.0 (fast)")
    cfg_scale: Float | None = Field(None, ge=1.0, le=10.0, description="1.0 to 10.0")
    steps: Int | None = Field(None, ge=1, le=100, description="1 to 100 diffusion steps")
    top_p: Float | None = Field(None, gt=0.0, le=1.0, description="above 0, at most 1")

    def given(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class OutputSpec(_Strict):
    format: AudioFormat = "wav"
    sample_rate: Int | None = Field(None, ge=8000, le=48000, description="8000 to 48000 Hz")
    audio_b64: bool | None = None
    """Inline audio in answers that carry it (the RunPod output, ``JobHandle.result(inline=True)``):
    unset or ``True``, while it fits NARRATOR_AUDIO_B64_MAX_BYTES; ``False``, never (``audio_url``
    only). Never stored, never in the Celery result. Decided in :mod:`narrator.job.delivery`."""
    split: Literal["chapters"] | None = None
    """A document's chapters also as files of their own (``chapters`` in the result); None: one file."""
    url_expires: Int | None = Field(None, ge=1, description="presigned URL lifetime, seconds")
    """Lifetime of every URL handed out for the job (audio, captions, streamed chunks); default
    NARRATOR_PRESIGN_DEFAULT_SECONDS; longer than NARRATOR_PRESIGN_MAX_SECONDS is refused at admission."""


class BookOptions(_Strict):
    """How a ``document`` becomes an audiobook."""

    speak_titles: bool = True
    """Each chapter begins with its title, spoken."""
    keep_matter: bool = False
    """Keep front and back matter (cover page, copyright, contents); left out by default."""
    chapter_pause_ms: Int = Field(2000, ge=0, le=10_000, description="0 to 10000 ms")
    """The pause before each chapter (a paragraph's is under a second)."""
    headings: str | None = Field(None, max_length=200)
    """Plain text only: a regular expression a chapter heading line matches, or "none" for one chapter;
    None: headings detected ("Chapter 1", "PART II", a short title line alone)."""


class JobRequest(_Strict):
    text: str | None = Field(None, min_length=1)
    """The text to speak; or give ``document``."""
    document: str | None = None
    """A whole document instead of ``text``: EPUB, HTML, Markdown or plain text, as base64 (or a
    ``data:`` URI), an http(s) URL, or ``store:KEY``, an object in narrator's storage."""
    document_format: DocumentFormat | None = None
    """What ``document`` is; None: told from its bytes and name."""
    chapters: str | None = Field(None, max_length=200)
    """Only these chapters of ``document``: ``3-5``, ``1,4,7-9`` (1-based, as ``narrator chunk`` lists them)."""
    book: BookOptions = BookOptions()
    model: str | None = Field(None, pattern=MODEL_NAME)
    voice: str | None = None
    """A voice: an http(s) URL, base64 audio (WAV, FLAC), or the name of a stored voice."""
    reference_audio: str | None = None
    """Seed-era RunPod field: base64 WAV of the voice to clone."""
    reference_audio_url: str | None = None
    """Seed-era RunPod field: URL of the voice to clone."""
    voices: dict[str, str] | None = None
    """Speaker voices for scripts: ``{"1": voice, "2": voice, ...}``, each like ``voice``."""
    speakers: dict[str, Int] | None = None
    """Script names mapped to speaker numbers: ``{"Alice": 1, "Bob": 2}`` for lines ``Alice: ...``."""
    normalize: bool = True
    """Read numbers, money, dates, abbreviations, URLs out (English)."""
    ssml: bool | None = None
    """The text is SSML; None: when it starts with ``<speak``."""
    language: str = Field("en", pattern=r"^[a-z]{2}(-[A-Za-z]{2})?$")
    verify: Literal["off", "report", "retry"] | None = None
    """Check each chunk's speech against its text: ``off``, ``report`` (check and list the chunks
    that fail), ``retry`` (synthesize a failing chunk again with another seed, keep the best).
    None: the model's default."""
    voice_settings: VoiceSettings = VoiceSettings()
    output: OutputSpec = OutputSpec()
    timeout: Float | None = Field(None, gt=0, le=24 * 3600, description="seconds to wait for the job")

    @field_validator("text")
    @classmethod
    def _text_is_speakable(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not value.strip():
            raise ValueError("text is empty or only whitespace")
        bad = _BAD_CHARS.search(value)
        if bad:
            raise ValueError(f"text contains a control or surrogate character at offset {bad.start()}")
        return value

    @field_validator("voices")
    @classmethod
    def _voice_keys(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for key in value or {}:
            if not key.isdigit() or not 1 <= int(key) <= 16:
                raise ValueError(f"voices keys are speaker numbers 1 to 16, not {key!r}")
        return value

    @field_validator("speakers")
    @classmethod
    def _speaker_numbers(cls, value: dict[str, int] | None) -> dict[str, int] | None:
        for name, number in (value or {}).items():
            if not 1 <= number <= 16:
                raise ValueError(f"speaker {name!r} must be a number from 1 to 16, not {number}")
            if not name.strip() or len(name) > 64:
                raise ValueError("speaker names are 1 to 64 characters")
        return value

    @model_validator(mode="before")
    @classmethod
    def _something_to_speak(cls, data: Any) -> Any:
        # Before the fields: with neither, the missing text is the first thing to say (a "Text" key
        # would otherwise be reported only as an unknown field).
        if isinstance(data, Mapping) and data.get("text") is None and data.get("document") is None:
            unknown = sorted(str(k) for k in data if k not in cls.model_fields)
            also = f" (unknown fields: {', '.join(unknown)})" if unknown else ""
            raise InvalidRequest(f"give text or document (one of them){also}", field="text")
        return data

    @model_validator(mode="after")
    def _text_or_document(self) -> JobRequest:
        # Raised as InvalidRequest (pydantic passes it through): the field is named, not "request".
        if (self.text is None) == (self.document is None):
            raise InvalidRequest("give text or document (one of them)" if self.text is None
                                 else "give text or document, not both", field="text")
        if self.document is None:
            for name in ("chapters", "document_format"):
                if getattr(self, name):
                    raise InvalidRequest("goes with document (a book's chapters), not text", field=name)
            if self.output.split:
                raise InvalidRequest("needs a document with chapters", field="output.split")
        return self

    @field_validator("chapters")
    @classmethod
    def _chapter_list(cls, value: str | None) -> str | None:
        if value is not None and not re.match(CHAPTER_SPEC, value):
            raise ValueError(f"{value!r} is not a chapter list like 3-5 or 1,4,7-9")
        return value

    @model_validator(mode="after")
    def _one_voice(self) -> JobRequest:
        if self.voices and "1" in self.voices and self.voice_input() is not None:
            raise ValueError("speaker 1's voice is given twice (voices.1 and voice/reference_audio)")
        given = [n for n in ("voice", "reference_audio", "reference_audio_url") if getattr(self, n)]
        if len(given) > 1:
            names = ", ".join(given)
            raise ValueError(f"give at most one of voice, reference_audio, reference_audio_url (got {names})")
        return self

    def voice_input(self) -> VoiceInput | None:
        """The one voice this request names for speaker 1 (``voice`` or a seed-era field), classified."""
        if self.reference_audio:
            return VoiceInput(kind="base64", value=self.reference_audio, field="reference_audio")
        if self.reference_audio_url:
            return VoiceInput(kind="url", value=self.reference_audio_url, field="reference_audio_url")
        if not self.voice:
            return None
        return classify_voice(self.voice, "voice")

    def voice_inputs(self) -> dict[int, VoiceInput]:
        """Speaker number -> voice, from ``voices`` and the single-voice fields (speaker 1)."""
        out: dict[int, VoiceInput] = {}
        for key, value in (self.voices or {}).items():
            out[int(key)] = classify_voice(value, f"voices.{key}")
        single = self.voice_input()
        if single is not None:
            out[1] = single
        return out

    @classmethod
    def parse(cls, data: Any) -> JobRequest:
        """Validate plain data (a dict from JSON) into a request, or raise InvalidRequest."""
        if isinstance(data, JobRequest):
            return data
        if not isinstance(data, Mapping):
            raise InvalidRequest(f"a request is a JSON object, not {type(data).__name__}", field="request")
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise invalid_from_pydantic(exc) from None

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


def classify_voice(raw: str, field: str) -> VoiceInput:
    value = raw.strip()
    if value.lower().startswith(("http://", "https://")) or "://" in value[:16]:
        return VoiceInput(kind="url", value=value, field=field)
    if VOICE_NAME.match(value):
        return VoiceInput(kind="name", value=value, field=field)
    return VoiceInput(kind="base64", value=value, field=field)


class VoiceInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: Literal["base64", "url", "name"]
    value: str
    field: str


def invalid_from_pydantic(exc: ValidationError) -> InvalidRequest:
    errors = exc.errors(include_url=False)
    parts = []
    first_field = ""
    for err in errors[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "request"
        first_field = first_field or loc
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        parts.append(f"{loc}: {msg}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return InvalidRequest("; ".join(parts) + more, field=first_field)
