"""Audio: decode and validate, resample, join chunks, loudness, encode, captions.

Pure functions over numpy and soundfile: no Celery, no storage.
"""

from .book_meta import BookTags, ChapterMark
from .captions import Cue, srt, webvtt
from .decode import Source, decode, flac_seconds, read_audio
from .dsp import resample
from .encode import FORMATS, content_type, encode, output_rate
from .join import DEFAULT_PAUSES_MS, ChunkIn, ChunkSpan, Joiner, JoinOptions, JoinReport, join, join_files, plain_copy
from .limiter import limit, true_peak_envelope
from .loudness import integrated_loudness
from .voice import normalise_decoded, normalise_voice, validate_voice

__all__ = [
    "DEFAULT_PAUSES_MS",
    "FORMATS",
    "BookTags",
    "ChapterMark",
    "ChunkIn",
    "ChunkSpan",
    "Cue",
    "JoinOptions",
    "JoinReport",
    "Joiner",
    "Source",
    "content_type",
    "decode",
    "encode",
    "flac_seconds",
    "integrated_loudness",
    "join",
    "join_files",
    "limit",
    "normalise_decoded",
    "normalise_voice",
    "output_rate",
    "plain_copy",
    "read_audio",
    "resample",
    "srt",
    "true_peak_envelope",
    "validate_voice",
    "webvtt",
]
