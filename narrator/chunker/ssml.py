"""An SSML subset into a :class:`Doc`, parsed with defusedxml: no DTDs, no entities, no external references.

Supported: ``<speak>``, ``<p>``/``<paragraph>``, ``<s>``/``<sentence>``, ``<break time|strength>``,
``<voice name>`` (a speaker), ``<prosody rate>`` (a speed factor), ``<sub alias>``,
``<say-as interpret-as>``, and ``<emphasis>``/``<mark>`` which are read through. Anything
else is an error naming the tag. Whitespace is not structure here: paragraphs come from tags.

Offsets: the parser reports each event's byte offset; text pieces map back to their
characters in the input (see :class:`~.doc.SourceMap`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from ..errors import InvalidRequest
from ..request import SPEED_RANGE
from . import numbers as num
from .chunk import Boundary, check_speaker
from .doc import Block, Doc, SourceMap
from .normalize import say_date, spell_out
from .sentences import CLOSERS

MAX_SSML_BYTES = 1 << 20
MAX_DEPTH = 64
MAX_BREAK_MS = 10_000
TAGS = frozenset({"speak", "p", "paragraph", "s", "sentence", "break", "voice", "prosody", "sub", "say-as",
                  "emphasis", "mark"})  # fmt: skip
_TEXT_ONLY = frozenset({"sub", "say-as", "break", "mark"})
_BREAK_STRENGTH = {"none": 0, "x-weak": 100, "weak": 250, "medium": 400, "strong": 750, "x-strong": 1200}
_RATE_WORDS = {"x-slow": 0.6, "slow": 0.8, "medium": 1.0, "default": 1.0, "fast": 1.25, "x-fast": 1.5}
_STRENGTH = {Boundary.WORD: 0, Boundary.CLAUSE: 1, Boundary.SENTENCE: 2, Boundary.PARAGRAPH: 3, Boundary.BREAK: 4}
_HEAD = re.compile(r"^\ufeff?\s*(?:<!--.*?-->\s*)*(?:<\?xml[\s?]|<!DOCTYPE\b|<speak[\s>/])", re.DOTALL)


def looks_like_ssml(text: str) -> bool:
    """Whether ``text`` is an XML document: a ``<speak>`` root, an XML declaration or a DOCTYPE (which is
    then rejected, rather than read aloud as plain text)."""
    return bool(_HEAD.match(text[:4096]))


@dataclass
class _Frame:
    name: str
    speaker: int
    speed: float | None
    v_start: int = 0
    s_start: int = 0
    part: int = 0
    attrib: dict[str, str] | None = None


def parse_ssml(
    text: str,
    speakers: dict[str, int],
    max_speakers: int | None,
    max_bytes: int = MAX_SSML_BYTES,
) -> Doc:
    """``speakers``: voice names (case-folded) -> speaker numbers; other names get the next free number."""
    data = text.encode("utf-8", errors="surrogatepass")
    if len(data) > max_bytes:
        raise InvalidRequest(f"SSML is {len(data)} bytes; at most {max_bytes} are accepted", field="text")
    builder = _Builder(text, data, speakers, max_speakers)
    parser = DefusedXMLParser(target=builder, encoding="utf-8", forbid_dtd=True)
    parser.parser.buffer_text = False  # one event per piece, so every piece has its own offset
    builder.parser = parser.parser
    try:
        parser.feed(data)
        parser.close()
    except DefusedXmlException:
        raise InvalidRequest("SSML must not declare a DTD, entities or external references", field="text") from None
    except ParseError as exc:
        raise InvalidRequest(f"malformed SSML: {exc}", field="text") from None
    return builder.doc()


class _Builder:
    """ElementTree parser target: collects text content, blocks and substitutions as events arrive."""

    def __init__(self, text: str, data: bytes, speakers: dict[str, int], max_speakers: int | None) -> None:
        self.parser: object = None
        self._text = text
        self._data = data
        self._ascii = len(data) == len(text)
        self._cursor = (0, 0)
        self._names = dict(speakers)
        self._used = set(speakers.values())
        self._max_speakers = max_speakers
        self._parts: list[str] = []
        self._vlen = 0
        self._map = SourceMap()
        self._pending: tuple[int, int, str] | None = None
        self._stack: list[_Frame] = []
        self._blocks: list[Block] = []
        self._open = False
        self._overrides: list[tuple[int, int, str]] = []
        self._tail = ""

    # -- offsets ---------------------------------------------------------------

    def _pos(self) -> int:
        """The input character offset of the current parser event."""
        b = self.parser.CurrentByteIndex  # type: ignore[attr-defined]  # the expat parser, set before feeding
        if self._ascii:
            return int(b)
        b0, c0 = self._cursor
        if b < b0:
            b0, c0 = 0, 0
        c = c0 + len(self._data[b0:b].decode("utf-8", errors="surrogatepass"))
        self._cursor = (b, c)
        return c

    def _mark(self) -> int:
        """Close the text piece in progress at the current event; return the event's offset."""
        pos = self._pos()
        if self._pending is not None:
            v0, s0, piece = self._pending
            exact = pos - s0 == len(piece) and self._text[s0:pos] == piece
            self._map.add(v0, v0 + len(piece), s0, pos, exact)
            self._pending = None
        return pos

    def _append(self, piece: str, s0: int, s1: int | None = None) -> None:
        """Add content; ``s1`` given: inserted text mapped to ``[s0, s1)`` as a whole."""
        speaks = bool(piece.strip())
        opened = self._open_block() if speaks else False
        v0 = self._vlen
        self._parts.append(piece)
        self._vlen += len(piece)
        if s1 is None:
            self._pending = (v0, s0, piece)
        else:
            self._map.add(v0, self._vlen, s0, s1, False)
        if speaks:
            block = self._blocks[-1]
            if opened:
                block.start = v0 + len(piece) - len(piece.lstrip())
            block.end = v0 + len(piece.rstrip())
            self._tail = piece.rstrip()[-8:]

    # -- blocks ----------------------------------------------------------------

    def _attrs(self) -> tuple[int, float | None]:
        if not self._stack:
            return 1, None
        top = self._stack[-1]
        return top.speaker, top.speed

    def _open_block(self) -> bool:
        """Make sure a block with the current speaker and speed is open; True if a new one was opened."""
        speaker, speed = self._attrs()
        if self._open:
            last = self._blocks[-1]
            if (last.speaker, last.speed) == (speaker, speed):
                return False
            last.after = _natural_boundary(self._tail)
        if speaker == 1:
            self._used.add(1)
        if self._vlen and not self._parts[-1][-1:].isspace():
            # Keep words of neighbouring blocks apart in the content text.
            pos = self._pos()
            self._append(" ", pos, pos)
        self._blocks.append(
            Block(self._vlen, self._vlen, after=Boundary.WORD, speaker=speaker, speed=speed, stop=False)
        )
        self._open = True
        return True

    def _cut(self, kind: Boundary, pause_ms: int = 0, stop: bool = False) -> None:
        self._open = False
        if not self._blocks:
            return  # nothing said yet: a leading pause has nothing to follow
        last = self._blocks[-1]
        if _STRENGTH.get(kind, 0) > _STRENGTH.get(last.after, 0):
            last.after = kind
        if pause_ms:
            last.pause_ms = (last.pause_ms or 0) + pause_ms
        last.stop = last.stop or stop

    # -- parser target ---------------------------------------------------------

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        pos = self._mark()
        name = tag.rpartition("}")[2]
        if name not in TAGS:
            raise InvalidRequest(f"unsupported SSML tag <{name}>", field="text")
        if not self._stack and name != "speak":
            raise InvalidRequest(f"SSML must start with <speak>, not <{name}>", field="text")
        if self._stack and name == "speak":
            raise InvalidRequest("<speak> cannot be nested", field="text")
        if self._stack and self._stack[-1].name in _TEXT_ONLY:
            raise InvalidRequest(f"<{self._stack[-1].name}> holds only text, not <{name}>", field="text")
        if len(self._stack) >= MAX_DEPTH:
            raise InvalidRequest(f"SSML nests deeper than {MAX_DEPTH} elements", field="text")
        speaker, speed = self._attrs() if self._stack else (1, None)
        attrib = {k.rpartition("}")[2]: v for k, v in attrib.items()}
        if name in ("p", "paragraph"):
            self._cut(Boundary.PARAGRAPH, stop=True)
        elif name in ("s", "sentence"):
            self._cut(Boundary.SENTENCE, stop=True)
        elif name == "break":
            pause = _break_ms(attrib)
            if pause:
                self._cut(Boundary.BREAK, pause_ms=pause)
        elif name == "voice":
            speaker = self._voice(attrib)
        elif name == "prosody" and "rate" in attrib:
            speed = _speed(attrib["rate"], speed)
        elif name == "sub" and "alias" not in attrib:
            raise InvalidRequest("<sub> needs an alias attribute", field="text")
        elif name == "say-as" and "interpret-as" not in attrib:
            raise InvalidRequest("<say-as> needs an interpret-as attribute", field="text")
        self._stack.append(_Frame(name, speaker, speed, self._vlen, pos, len(self._parts), attrib))

    def end(self, tag: str) -> None:
        pos = self._mark()
        frame = self._stack.pop()
        if frame.name in ("p", "paragraph"):
            self._cut(Boundary.PARAGRAPH, stop=True)
        elif frame.name in ("s", "sentence"):
            self._cut(Boundary.SENTENCE, stop=True)
        elif frame.name in ("sub", "say-as"):
            self._substitute(frame, pos)
        elif frame.name == "speak":
            self._cut(Boundary.WORD, stop=True)

    def data(self, piece: str) -> None:
        pos = self._mark()
        if not piece:
            return
        self._append(piece, pos)

    def comment(self, text: str) -> None:
        self._mark()

    def pi(self, target: str, text: str) -> None:
        self._mark()

    def close(self) -> None:
        """The root's end tag closed the last piece."""

    # -- elements --------------------------------------------------------------

    def _voice(self, attrib: dict[str, str]) -> int:
        label = (attrib.get("name") or "").strip()
        if not label:
            raise InvalidRequest("<voice> needs a name attribute", field="text")
        m = re.fullmatch(r"(?:speaker[ _-]?)?(\d{1,3})", label, re.IGNORECASE)
        if m:
            number = int(m[1])
        elif label.casefold() in self._names:
            number = self._names[label.casefold()]
        else:
            number = next(n for n in range(1, len(self._used) + 2) if n not in self._used)
            self._names[label.casefold()] = number
        check_speaker(number, label, self._max_speakers)
        self._used.add(number)
        return number

    def _substitute(self, frame: _Frame, pos: int) -> None:
        content = "".join(self._parts[frame.part :])
        attrib = frame.attrib or {}
        if frame.name == "sub":
            spoken = attrib["alias"]
        else:
            spoken = say_as(content, attrib["interpret-as"], attrib.get("format", ""))
        if not content.strip():
            if spoken.strip():
                # Nothing to substitute: the alias itself is the content, mapped to the element.
                start = self._vlen
                self._append(spoken, frame.s_start, pos)
                self._overrides.append((start, self._vlen, " ".join(spoken.split())))
            return
        lead = len(content) - len(content.lstrip())
        a = frame.v_start + lead
        b = frame.v_start + len(content.rstrip())
        self._overrides.append((a, b, " ".join(spoken.split())))

    def doc(self) -> Doc:
        if self._blocks:
            self._blocks[-1].stop = True
        blocks = [b for b in self._blocks if b.end > b.start]
        protected = [(a, b) for a, b, _ in self._overrides]
        return Doc("".join(self._parts), blocks, self._overrides, self._map, protected)


def _natural_boundary(tail: str) -> Boundary:
    """The kind of a cut made by a change of voice or speed, from the text before it."""
    core = tail.rstrip(CLOSERS)
    if core[-1:] in tuple(".!?…。！？"):
        return Boundary.SENTENCE
    if core[-1:] in tuple(",;:—–，；："):
        return Boundary.CLAUSE
    return Boundary.WORD


def _break_ms(attrib: dict[str, str]) -> int:
    if "time" in attrib:
        value = attrib["time"].strip().lower()
        m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(ms|s)?", value)
        if not m:
            raise InvalidRequest(f"<break time={attrib['time']!r}>: give a time such as 500ms or 1.5s", field="text")
        ms = round(float(m[1]) * (1 if m[2] in (None, "ms") else 1000))
        if ms > MAX_BREAK_MS:
            raise InvalidRequest(f"<break time={attrib['time']!r}> is longer than {MAX_BREAK_MS} ms", field="text")
        return ms
    strength = attrib.get("strength", "medium").strip().lower()
    if strength not in _BREAK_STRENGTH:
        raise InvalidRequest(f"<break strength={strength!r}>: one of {', '.join(_BREAK_STRENGTH)}", field="text")
    return _BREAK_STRENGTH[strength]


def _speed(rate: str, parent: float | None) -> float | None:
    value = rate.strip().lower()
    try:
        if value in _RATE_WORDS:
            factor = _RATE_WORDS[value]
        elif value.endswith("%"):
            n = float(value[:-1])
            factor = 1 + n / 100 if value[0] in "+-" else n / 100
        else:
            factor = float(value)
    except ValueError:
        raise InvalidRequest(
            f"<prosody rate={rate!r}>: give x-slow..x-fast, a percentage or a factor", field="text"
        ) from None
    speed = round((parent or 1.0) * factor, 3)
    low, high = SPEED_RANGE
    if not low <= speed <= high:
        raise InvalidRequest(f"<prosody rate={rate!r}> gives speed {speed}; it must be {low} to {high}", field="text")
    return None if speed == 1.0 else speed


def say_as(content: str, interpret_as: str, fmt: str = "") -> str:
    """The words for ``<say-as>`` content."""
    kind = interpret_as.strip().lower()
    text = content.strip()
    if kind in ("characters", "spell-out", "letters", "verbatim"):
        return spell_out(text)
    if kind in ("digits", "telephone"):
        return num.digits(text)
    if kind in ("cardinal", "number", "ordinal"):
        m = re.fullmatch(r"(-?)(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?", text)
        if not m or (kind == "ordinal" and (m[1] or m[3])):
            raise InvalidRequest(f"<say-as interpret-as={interpret_as!r}>: {text!r} is not a number", field="text")
        if kind == "ordinal":
            return num.ordinal_of(m[2])
        words = num.decimal(m[2], m[3]) if m[3] else num.number(m[2])
        return ("minus " if m[1] else "") + words
    if kind == "date":
        return _date(text, fmt, interpret_as)
    raise InvalidRequest(
        f"<say-as interpret-as={interpret_as!r}> is not supported: use characters, cardinal, ordinal, digits or date",
        field="text",
    )


def _date(text: str, fmt: str, interpret_as: str) -> str:
    parts = [p for p in re.split(r"[-/.\s]+", text) if p]
    order = (fmt or ("ymd" if parts and len(parts[0]) == 4 else "mdy")).lower()
    bad = InvalidRequest(
        f"<say-as interpret-as={interpret_as!r} format={order!r}>: {text!r} is not a date", field="text"
    )
    if len(parts) != len(order) or set(order) - set("ymd") or len(set(order)) != len(order):
        raise bad
    if not all(p.isdigit() and len(p) <= 4 for p in parts):
        raise bad
    values = dict(zip(order, (int(p) for p in parts), strict=True))
    month, day, year = values.get("m"), values.get("d"), values.get("y")
    if (month is not None and not 1 <= month <= 12) or (day is not None and not 1 <= day <= 31):
        raise bad
    if year is not None and year < 100 and len(parts[order.index("y")]) == 2:
        year += 2000 if year < 50 else 1900
    return say_date(year, month, day)
