"""What a chapter heading looks like in words: "Chapter 1", "CHAPTER ONE", "Part II", "BOOK THE FIRST", "Epilogue".

Shared by the plain-text reader (which finds chapters by it) and the EPUB reader (where a page with a
chapter-like title is never front matter, however short).
"""

from __future__ import annotations

import re

_NUMBER_WORDS = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen"
    "|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred"
)
_ORDINALS = (
    "first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|thirteenth|fourteenth"
    "|fifteenth|sixteenth|seventeenth|eighteenth|nineteenth|twentieth|last"
)
_NUMBER = rf"(?:\d{{1,4}}|[IVXLCDM]{{1,8}}|(?:{_NUMBER_WORDS})(?:[- ](?:{_NUMBER_WORDS}))?|the (?:{_ORDINALS}))"
_KEYWORD = r"(?:chapter|part|book|volume|section|canto|stave|letter|act|kapitel|teil|buch)"
_TAIL = r"(?:\s*[.:\-—–]\s*(?:\S.{0,80})?|\s+[\"“‘']?[A-Z\d][^.!?]{0,80})?"
#: "Chapter XII. The Storm", "CHAPTER ONE", "Part II", "BOOK THE FIRST", "Kapitel 3": the whole line.
NUMBERED = re.compile(rf"{_KEYWORD}\s+{_NUMBER}\.?{_TAIL}", re.IGNORECASE)
#: "PROLOGUE", "Epilogue: After", a named part with no number.
NAMED = re.compile(
    r"(?:prologue|epilogue|preface|foreword|introduction|afterword|interlude|conclusion|postscript)"
    r"(?:\s*[.:\-—–]\s*\S.{0,80})?\.?",
    re.IGNORECASE,
)
_KEYWORD_START = re.compile(rf"{_KEYWORD}\b|[A-Z]", re.IGNORECASE)


def chapter_like(line: str) -> bool:
    """Whether a whole line reads as a chapter heading. Its first letter must be a capital: "part two of the
    plan" inside a sentence is not one."""
    line = line.strip()
    if not line or len(line) > 100 or not line[0].isupper():
        return False
    return bool(NUMBERED.fullmatch(line) or NAMED.fullmatch(line))
