"""Properties of chunk_text on generated text: limits, the exact span map, determinism."""

from __future__ import annotations

import html
import itertools
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from narrator.chunker import Boundary, chunk_text

WORDS = [
    "Dr.", "Mr.", "e.g.", "U.S.", "etc.", "3.14", "$3.50", "50%", "1984", "a.m.", "J.", "R.", "Tolkien", "the",
    "cat", "sat", "on", "mat", "...", "…", "!", "?", ".", ",", ";", "—", "-", '"', "'", "(", ")", "Speaker",
    "CHAPTER", "IV", "#", "*", "•", "https://example.com/a", "jane@example.org", "中文", "。", "！", "，", "😀",
    "👩‍👩‍👧", "🇫🇷", "e\u0301", "supercalifragilisticexpialidocious", "word", "Hello", "world", "2021-03-04", "1st",
]  # fmt: skip
SEPARATORS = [" ", " ", " ", "", "\n", "\n\n", "\t", "  \n \n", "\r\n"]

texts = st.one_of(
    st.text(max_size=400),
    st.lists(st.tuples(st.sampled_from(WORDS), st.sampled_from(SEPARATORS)), max_size=120).map(
        lambda parts: "".join(w + s for w, s in parts)
    ),
)
limits = st.integers(min_value=1, max_value=120)


_WORD_GAP = re.compile(r"\s+(?![\u0300-\u036f\u200d])")


def _check(text: str, max_chars: int, normalize: bool) -> None:
    chunks = chunk_text(text, max_chars, normalize=normalize, ssml=False)
    # Nothing lost, nothing reordered: the sources, joined, are the input without whitespace.
    assert "".join("".join(text[c.start : c.end].split()) for c in chunks) == "".join(text.split())
    for c in chunks:
        assert c.text == text[c.start : c.end]
        assert c.text == c.text.strip() and c.text
    for a, b in itertools.pairwise(chunks):
        assert a.end <= b.start, "spans overlap or go backwards"
    assert [c.index for c in chunks] == list(range(len(chunks)))
    for c in chunks:
        if len(c.text) > max_chars or len(c.spoken) > max_chars:
            # A space followed by a combining mark or joiner is one cluster, not a word gap.
            words = _WORD_GAP.split(c.text)
            assert len(words) == 1, f"chunk over the limit is not one word: {c.text!r}"
    if chunks:
        assert chunks[-1].boundary == Boundary.END
        assert all(c.boundary != Boundary.END for c in chunks[:-1])
    assert chunk_text(text, max_chars, normalize=normalize, ssml=False) == chunks


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts, limits, st.booleans())
def test_span_map_limits_and_determinism(text: str, max_chars: int, normalize: bool) -> None:
    _check(text, max_chars, normalize)


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.sampled_from("abc 中文。，😀\u200d\u0301\n"), max_size=300), limits)
def test_unspaced_scripts_split_only_between_characters(text: str, max_chars: int) -> None:
    chunks = chunk_text(text, max_chars, ssml=False)
    _check(text, max_chars, True)
    for a, b in itertools.pairwise(chunks):
        if a.end == b.start:  # cut inside a run without spaces
            # A cut never separates a combining mark or a joiner from what it joins.
            assert not b.text.startswith(("\u200d", "\u0301"))
            assert not a.text.endswith("\u200d")


_TAGS = ["", "", "<break time='100ms'/>", "<s>", "</s>", "<p>", "</p>", "<voice name='2'>", "</voice>"]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.text(alphabet=st.sampled_from("ab é.,!?&<>中😀 \n"), max_size=12), st.sampled_from(_TAGS)),
        max_size=30,
    ),
    limits,
)
def test_ssml_spans_map_to_the_text_content(parts: list[tuple[str, str]], max_chars: int) -> None:
    body = []
    depth = {"s": 0, "p": 0, "voice": 0}
    for piece, tag in parts:
        body.append(html.escape(piece, quote=False))
        name = tag.strip("</>").split()[0].rstrip("/") if tag else ""
        if tag.startswith("</"):
            if depth[name]:
                depth[name] -= 1
                body.append(tag)
        elif name in depth:
            if not any(depth.values()):  # keep the markup well nested: one open element at a time
                depth[name] += 1
                body.append(tag)
        else:
            body.append(tag)
    body.extend(f"</{name}>" for name, n in depth.items() for _ in range(n))
    document = "<speak>" + "".join(body) + "</speak>"
    chunks = chunk_text(document, max_chars, normalize=False)
    content = "".join(html.unescape(re.sub(r"<[^>]*>", "", document)).split())
    assert "".join("".join(c.text.split()) for c in chunks) == content
    for a, b in itertools.pairwise(chunks):
        assert a.end <= b.start
    for c in chunks:
        source = html.unescape(re.sub(r"<[^>]*>", "", document[c.start : c.end]))
        assert "".join(source.split()) == "".join(c.text.split())
