"""Hearing a chunk: its speech checked against its text (pure apart from the recogniser).

``check_audio`` gives a :class:`ChunkCheck`; recognisers: :mod:`.sphinx` (English, any
CPU, no download) and :mod:`.whisper` (faster-whisper, a model folder you configure).
:func:`recogniser_for` builds the one a process uses, from settings.
"""

from .check import check_audio
from .recogniser import Recogniser, Transcript, Word
from .timing import Timed, phrases
from .verdict import ChunkCheck, Limits

__all__ = ["ChunkCheck", "Limits", "Recogniser", "Timed", "Transcript", "Word", "check_audio", "phrases"]
