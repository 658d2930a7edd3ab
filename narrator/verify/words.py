"""The words a chunk says, as the check compares them: lower case, letters and apostrophes.

The chunk text is already normalised by the chunker (numbers, symbols and abbreviations
written out as spoken), so this only splits it: what the engine was asked to say is
what the recogniser should hear.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*|\d+")
# Speaker formats put labels the model does not speak before a line ("Speaker 1:").
_SPEAKER_LABEL = re.compile(r"(?m)^\s*(?:\[\d+\]|speaker\s*\d+)\s*:\s*", re.IGNORECASE)


def words(text: str) -> list[str]:
    """``text``'s words, lower case, apostrophes straightened; speaker labels left out."""
    text = _SPEAKER_LABEL.sub(" ", text)
    return [w.replace("’", "'").lower() for w in _WORD.findall(text)]
