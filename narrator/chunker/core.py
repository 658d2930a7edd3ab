"""Text -> ordered chunks: plain text, speaker scripts or SSML, packed to a model's chunk size.

Every chunk keeps its span in the input. For plain text, ``text[c.start:c.end]`` is the
chunk's source and the sources, joined in order, are the input without its whitespace;
for scripts the same holds without the speaker labels; for SSML spans cover the text
content. What the model is given is ``c.spoken``: the source normalised for speech
(unless ``normalize=False``), with SSML substitutions and whitespace folded.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping

from ..errors import InvalidRequest
from .chunk import Boundary, Chunk
from .doc import Block, Doc
from .pack import Atom, Packed, atoms, pack, spoken_text
from .plain import Override, plain_blocks
from .script import normalized_speakers, script_blocks, turns
from .ssml import MAX_SSML_BYTES, looks_like_ssml, parse_ssml

log = logging.getLogger(__name__)

DEFAULT_MIN_CHARS = 40


def chunk_text(
    text: str,
    max_chars: int,
    *,
    min_chars: int | None = None,
    normalize: bool = True,
    speakers: Mapping[str, int] | None = None,
    max_speakers: int | None = None,
    ssml: bool | None = None,
    language: str = "en",
    max_ssml_bytes: int = MAX_SSML_BYTES,
) -> list[Chunk]:
    """Split ``text`` into chunks of at most ``max_chars`` (a longer single word stands alone).

    ``min_chars``: chunks shorter than this merge with a neighbour where they can (a model's
    ``min_chunk_chars``; None: ``min(40, max_chars // 4)``; 0: never). ``normalize``: read numbers,
    money, dates, abbreviations, URLs out in English (only when ``language`` is English).
    ``speakers`` maps script names (``Alice: ...``) and SSML voice names to speaker numbers;
    ``max_speakers`` is the most a model voices. ``ssml``: None detects a ``<speak>`` document.
    """
    if max_chars < 1:
        raise InvalidRequest(f"max_chars must be at least 1, not {max_chars}", field="max_chars")
    if min_chars is None:
        min_chars = min(DEFAULT_MIN_CHARS, max_chars // 4)
    min_chars = max(0, min(min_chars, max_chars // 2))
    doc = _document(text, speakers or {}, max_speakers, ssml, max_ssml_bytes)
    _link(doc.blocks)
    items = atoms(doc, max_chars, normalize and language.lower().startswith("en"))
    packed = pack(doc, items, max_chars, min_chars)
    chunks = [_chunk(doc, items, p, i, i == len(packed) - 1) for i, p in enumerate(packed)]
    log.debug(
        "chunked text",
        extra={"chars": len(text), "chunks": len(chunks), "max_chars": max_chars, "ssml": doc.source is not None},
    )
    return chunks


def _document(
    text: str, speakers: Mapping[str, int], max_speakers: int | None, ssml: bool | None, max_ssml_bytes: int
) -> Doc:
    names = normalized_speakers(speakers)
    if ssml or (ssml is None and looks_like_ssml(text)):
        return parse_ssml(text, names, max_speakers, max_ssml_bytes)
    overrides: list[Override] = []
    script = turns(text, speakers, max_speakers)
    if script is None:
        blocks = plain_blocks(text, 0, len(text), overrides)
    else:
        blocks = script_blocks(text, script, overrides)
    return Doc(text, blocks, overrides)


def _link(blocks: list[Block]) -> None:
    """Boundaries that depend on the next block: a speaker change, a heading ahead, the end."""
    for a, b in itertools.pairwise(blocks):
        if a.speaker != b.speaker and a.after != Boundary.BREAK:
            a.after = Boundary.SPEAKER
        elif b.heading and a.after in (Boundary.SENTENCE, Boundary.PARAGRAPH):
            a.after = Boundary.HEADING
    if blocks:
        blocks[-1].after = Boundary.END


def _chunk(doc: Doc, items: list[Atom], packed: Packed, index: int, final: bool) -> Chunk:
    first, last = items[packed.first], items[packed.last]
    block = doc.blocks[last.block]
    start, end = doc.source_span(first.start, last.end)
    ends_block = packed.last + 1 == len(items) or items[packed.last + 1].block != last.block
    return Chunk(
        index=index,
        text=doc.text[first.start : last.end],
        start=start,
        end=end,
        boundary=Boundary.END if final else last.after,
        speaker=block.speaker,
        pause_ms=block.pause_ms if ends_block else None,
        spoken=spoken_text(items, packed),
        speed=block.speed,
    )
