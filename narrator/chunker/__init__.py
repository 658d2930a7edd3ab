"""Text -> ordered chunks. Pure: no I/O, no Celery."""

from .chunk import Boundary, Chunk, estimated_seconds, slot_text, speaker_text, spoken_words
from .core import chunk_text
from .normalize import normalize
from .slots import SpeakerSlots, speaker_slots
from .ssml import MAX_SSML_BYTES, looks_like_ssml

__all__ = [
    "MAX_SSML_BYTES",
    "Boundary",
    "Chunk",
    "SpeakerSlots",
    "chunk_text",
    "estimated_seconds",
    "looks_like_ssml",
    "normalize",
    "slot_text",
    "speaker_slots",
    "speaker_text",
    "spoken_words",
]
