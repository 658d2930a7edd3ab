"""Multi-speaker scripts: lines ``Speaker 1: ...`` (or ``[1]: ...``, or ``Name: ...`` for mapped names).

A turn runs from its label to the next label line. Labels are not part of any chunk's span.
Text before the first label belongs to speaker 1.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import InvalidRequest
from .chunk import check_speaker
from .doc import Block
from .plain import Override, plain_blocks

_NUMBERED = r"(?:speaker|spk)[ \t]*(?P<num>\d{1,3})|\[(?P<bracket>\d{1,3})\]"


@dataclass(frozen=True)
class Turn:
    start: int
    end: int
    speaker: int


def label_pattern(speakers: Mapping[str, int]) -> re.Pattern[str]:
    alternatives = [_NUMBERED]
    names = sorted((n.strip() for n in speakers if n.strip()), key=len, reverse=True)
    if names:
        alternatives.append("(?P<name>" + "|".join(re.escape(n) for n in names) + ")")
    return re.compile(r"^[ \t]*(?:" + "|".join(alternatives) + r")[ \t]*:", re.IGNORECASE | re.MULTILINE)


def normalized_speakers(speakers: Mapping[str, int] | None) -> dict[str, int]:
    """The name map keyed case-insensitively, its numbers checked."""
    out: dict[str, int] = {}
    for name, number in (speakers or {}).items():
        if not isinstance(number, int) or isinstance(number, bool) or number < 1:
            raise InvalidRequest(
                f"speaker {name!r} must map to a speaker number from 1, not {number!r}", field="speakers"
            )
        if not name.strip():
            raise InvalidRequest("speaker names must not be empty", field="speakers")
        out[name.strip().casefold()] = number
    return out


def turns(text: str, speakers: Mapping[str, int], max_speakers: int | None) -> list[Turn] | None:
    """The turns of a script, or None when ``text`` has no speaker labels."""
    names = normalized_speakers(speakers)
    labels = list(label_pattern(speakers).finditer(text))
    if not labels:
        return None
    out = []
    if text[: labels[0].start()].strip():
        out.append(Turn(0, labels[0].start(), 1))
    for i, m in enumerate(labels):
        name = m.groupdict().get("name")
        if name:
            number = names[name.casefold()]
        else:
            number = int(m["num"] or m["bracket"])
        check_speaker(number, m.group().strip().rstrip(":").strip(), max_speakers)
        end = labels[i + 1].start() if i + 1 < len(labels) else len(text)
        if text[m.end() : end].strip():
            out.append(Turn(m.end(), end, number))
    return out


def script_blocks(text: str, script: list[Turn], overrides: list[Override]) -> list[Block]:
    blocks: list[Block] = []
    for index, turn in enumerate(script):
        for block in plain_blocks(text, turn.start, turn.end, overrides):
            block.speaker = turn.speaker
            block.turn = index
            blocks.append(block)
    return blocks
