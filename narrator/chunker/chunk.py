"""The chunker's output: what each chunk says, who says it, where it came from, what follows it."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from ..errors import InvalidRequest, ModelError
from .slots import SpeakerSlots, speaker_slots


class Boundary(StrEnum):
    """What follows a chunk: it decides the pause after it."""

    WORD = "word"
    """A sentence too long for one chunk was cut between words (or CJK characters)."""
    CLAUSE = "clause"
    """A sentence too long for one chunk was cut at a comma, semicolon, colon or dash."""
    SENTENCE = "sentence"
    PARAGRAPH = "paragraph"
    HEADING = "heading"
    """A heading follows, or this chunk ends with one."""
    SPEAKER = "speaker"
    """The next chunk has another speaker."""
    BREAK = "break"
    """An explicit SSML ``<break>``: ``pause_ms`` says how long."""
    END = "end"


@dataclass(frozen=True)
class Chunk:
    index: int
    text: str
    """The source of the chunk: ``input[start:end]`` for plain text and scripts; for SSML its text content."""
    start: int
    end: int
    """Character offsets of the chunk's source in the input as given."""
    boundary: Boundary
    speaker: int = 1
    """1-based speaker number."""
    pause_ms: int | None = None
    """An explicit pause after this chunk (SSML ``<break>``); None: the boundary's usual pause."""
    spoken: str = ""
    """What to synthesize: the source after normalisation, SSML substitutions and whitespace folding.
    ``chunk_text`` always fills it; it is empty only when the source has nothing to say (emoji, rules)."""
    speed: float | None = None
    """A speed factor from SSML ``<prosody rate>``; None: the request's own speed."""

    @property
    def words(self) -> int:
        return spoken_words(self.spoken)

    @property
    def seconds(self) -> float:
        """Estimated speaking time at about 150 words a minute."""
        return estimated_seconds(self.spoken, self.speed)

    @property
    def slots(self) -> SpeakerSlots:
        """The chunk's lines numbered by voice slot, and the speakers whose voices the slots carry."""
        return speaker_slots([(self.speaker, self.spoken)])

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["boundary"] = self.boundary.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Chunk:
        return cls(**{**data, "boundary": Boundary(data["boundary"])})


#: The rate a chunk's ``seconds`` assumes; a model file may say its own (``words_per_minute``).
WORDS_PER_MINUTE = 150.0
_CJK_CHARS_PER_SECOND = 4.0
_CJK_CHAR = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")


def spoken_words(text: str) -> int:
    """Words in ``text``; each CJK character counts as a word."""
    cjk = len(_CJK_CHAR.findall(text))
    if not cjk:
        return len(text.split())
    return cjk + len(_CJK_CHAR.sub(" ", text).split())


def estimated_seconds(text: str, speed: float | None = None) -> float:
    cjk = len(_CJK_CHAR.findall(text))
    other = len(_CJK_CHAR.sub(" ", text).split()) if cjk else len(text.split())
    seconds = other * 60.0 / WORDS_PER_MINUTE + cjk / _CJK_CHARS_PER_SECOND
    return seconds / (speed or 1.0)


def speaker_text(chunk: Chunk, speaker_format: str) -> str:
    """The chunk's spoken text in a model's ``speaker_format`` (e.g. ``"Speaker {n}: {text}"``).

    ``{n}`` is the speaker's slot in the chunk, not its number in the job: see :mod:`.slots`.
    """
    return slot_text(chunk.slots, speaker_format)


def slot_text(slots: SpeakerSlots, speaker_format: str) -> str:
    """One line per ``(slot, text)`` in ``speaker_format``."""
    try:
        return "\n".join(speaker_format.format(n=n, text=text) for n, text in slots.lines)
    except (KeyError, IndexError, ValueError) as exc:
        raise ModelError(f"speaker_format {speaker_format!r} takes only {{n}} and {{text}}: {exc}") from None


def check_speaker(number: int, label: str, max_speakers: int | None) -> None:
    """Reject a speaker the model cannot voice; the message names the speaker as written."""
    if number < 1:
        raise InvalidRequest(f"speaker {label!r}: speaker numbers start at 1", field="text")
    if max_speakers is not None and number > max_speakers:
        raise InvalidRequest(
            f"speaker {label!r} is speaker {number}, but this model voices at most {max_speakers} "
            f"speaker{'s' if max_speakers != 1 else ''}",
            field="text",
        )
