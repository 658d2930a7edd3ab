"""SSML: each supported tag, nesting, offsets into the input, and documents that must be refused."""

from __future__ import annotations

import itertools
import time
import tracemalloc
from typing import Any

import pytest

from narrator.chunker import Boundary, Chunk, chunk_text, looks_like_ssml
from narrator.errors import InvalidRequest


def ssml(body: str, max_chars: int = 200, **kw: Any) -> list[Chunk]:
    return chunk_text(f"<speak>{body}</speak>", max_chars, min_chars=0, **kw)


def spoken(body: str, **kw: Any) -> list[str]:
    return [c.spoken for c in ssml(body, **kw)]


def test_speak_alone_is_plain_sentences() -> None:
    chunks = ssml("Hello there. <!-- note --> How are you?", max_chars=14)
    assert [(c.text, c.boundary) for c in chunks] == [
        ("Hello there.", Boundary.SENTENCE),
        ("How are you?", Boundary.END),
    ]


def test_whitespace_is_not_structure() -> None:
    (chunk,) = ssml("\r\n  Hello\n\n  there.\r\n")
    assert chunk.spoken == "Hello there."


def test_paragraphs_and_sentences() -> None:
    chunks = ssml("<p>First para. Still first.</p><p><s>Second</s><s>Third</s></p>", max_chars=25)
    assert [(c.text, c.boundary.value, c.spoken) for c in chunks] == [
        ("First para. Still first.", "paragraph", "First para. Still first."),
        ("Second Third", "end", "Second. Third."),
    ]


def test_break_time_and_strength() -> None:
    chunks = ssml('Wait<break time="2s"/>for it<break strength="strong"/>now<break time="250ms"/>'
                  '<break time="0.5s"/>then<break strength="none"/> more.<break time="300ms"/>')  # fmt: skip
    assert [(c.text, c.boundary.value, c.pause_ms) for c in chunks] == [
        ("Wait", "break", 2000),
        ("for it", "break", 750),
        ("now", "break", 750),  # consecutive breaks add up
        ("then more.", "end", 300),  # a trailing break is kept for the end
    ]


def test_a_leading_break_has_nothing_to_follow() -> None:
    (chunk,) = ssml('<break time="1s"/>Hi.')
    assert chunk.pause_ms is None and chunk.text == "Hi."


def test_voice_names_become_speakers() -> None:
    chunks = ssml(
        'Intro. <voice name="Speaker 2">Two.</voice><voice name="alice">A.</voice><voice name="Bob">B.</voice>'
        '<voice name="3">Three.</voice>',
        speakers={"bob": 4},
    )
    assert [(c.text, c.speaker, c.boundary.value) for c in chunks] == [
        ("Intro.", 1, "speaker"),
        ("Two.", 2, "speaker"),
        ("A.", 3, "speaker"),  # the lowest number not yet used
        ("B.", 4, "speaker"),
        ("Three.", 3, "end"),
    ]


def test_too_many_voices_names_the_voice() -> None:
    with pytest.raises(InvalidRequest, match="'carol' is speaker 3.*at most 2") as err:
        ssml('<voice name="alice">A</voice><voice name="bob">B</voice><voice name="carol">C</voice>', max_speakers=2)
    assert err.value.field == "text"


def test_prosody_rate_is_a_speed_per_chunk() -> None:
    chunks = ssml(
        'Normal. <prosody rate="slow">Slow <prosody rate="x-fast">then quick.</prosody></prosody> '
        '<prosody rate="+10%">Faster.</prosody> <prosody rate="90%">Slower.</prosody> '
        '<prosody rate="medium" pitch="high">Normal again.</prosody> <prosody rate="1.5">Factor.</prosody>'
    )
    assert [(c.text, c.speed) for c in chunks] == [
        ("Normal.", None),
        ("Slow", 0.8),
        ("then quick.", 1.2),  # nested rates multiply
        ("Faster.", 1.1),
        ("Slower.", 0.9),
        ("Normal again.", None),
        ("Factor.", 1.5),
    ]
    assert chunks[1].boundary == Boundary.WORD and chunks[2].boundary == Boundary.SENTENCE


def test_sub_alias_is_spoken_and_never_cut() -> None:
    chunks = ssml('Ask <sub alias="World Wide Web Consortium">W3C</sub>. <sub alias="the end"/>', max_chars=6)
    assert [c.spoken for c in chunks] == ["Ask", "World Wide Web Consortium.", "the end."]
    assert chunks[1].text == "W3C."


@pytest.mark.parametrize(
    ("markup", "said"),
    [
        ('<say-as interpret-as="characters">NASA</say-as>', "N A S A"),
        ('<say-as interpret-as="spell-out">ab1</say-as>', "A B one"),
        ('<say-as interpret-as="cardinal">1,234</say-as>', "one thousand two hundred thirty-four"),
        ('<say-as interpret-as="cardinal">-1.5</say-as>', "minus one point five"),
        ('<say-as interpret-as="ordinal">21</say-as>', "twenty-first"),
        ('<say-as interpret-as="digits">2024</say-as>', "two zero two four"),
        ('<say-as interpret-as="date">2021-03-04</say-as>', "March fourth, twenty twenty-one"),
        ('<say-as interpret-as="date" format="dmy">4/3/2021</say-as>', "March fourth, twenty twenty-one"),
        ('<say-as interpret-as="date" format="mdy">12/25/99</say-as>', "December twenty-fifth, nineteen ninety-nine"),
        ('<say-as interpret-as="date" format="md">7/4</say-as>', "July fourth"),
        ('<say-as interpret-as="date" format="y">1984</say-as>', "nineteen eighty-four"),
    ],
)
def test_say_as(markup: str, said: str) -> None:
    assert spoken(f"Say {markup} now") == [f"Say {said} now."]


def test_say_as_and_sub_apply_with_normalisation_off() -> None:
    body = 'Dr. <sub alias="Doctor">Dr.</sub> <say-as interpret-as="cardinal">12</say-as> 12'
    assert spoken(body, normalize=False) == ["Dr. Doctor twelve 12."]


def test_emphasis_and_mark_are_read_through() -> None:
    assert spoken('A <emphasis level="strong">big</emphasis> deal<mark name="here"/>.') == ["A big deal."]


def test_namespaces_and_declaration() -> None:
    text = ('<?xml version="1.0" encoding="ISO-8859-1"?>\n<speak version="1.1" '
            'xmlns="http://www.w3.org/2001/10/synthesis" xml:lang="en-US"><p>Größe zählt.</p></speak>')  # fmt: skip
    (chunk,) = chunk_text(text, 100)
    assert chunk.spoken == "Größe zählt."
    assert text[chunk.start : chunk.end] == "Größe zählt."


def test_spans_point_at_the_text_content() -> None:
    text = '\ufeff<speak>Ünïcode café &amp; <sub alias="Doctor">Dr.</sub> Smith.\r\n<p>Next &#233;tape.</p></speak>'
    chunks = chunk_text(text, 200, min_chars=0)
    assert [text[c.start : c.end] for c in chunks] == [
        'Ünïcode café &amp; <sub alias="Doctor">Dr.</sub> Smith.',
        "Next &#233;tape.",
    ]
    assert [c.text for c in chunks] == ["Ünïcode café & Dr. Smith.", "Next étape."]
    assert chunks[0].spoken == "Ünïcode café and Doctor Smith."


def test_spans_of_a_large_document_increase() -> None:
    body = "".join(f"<p>Paragraph {i} says <sub alias='something'>this</sub> é.</p>" for i in range(2000))
    text = f"<speak>{body}</speak>"
    chunks = chunk_text(text, 300)
    assert all(a.end <= b.start for a, b in itertools.pairwise(chunks))
    assert all(text[c.start : c.end].startswith("Paragraph") for c in chunks)
    assert sum(c.text.count("Paragraph") for c in chunks) == 2000


@pytest.mark.parametrize(
    ("text", "detected"),
    [
        ("<speak>Hi</speak>", True),
        ('\ufeff  <?xml version="1.0"?><speak>Hi</speak>', True),
        ("<!-- c --><speak>Hi</speak>", True),
        ("<!DOCTYPE speak><speak>Hi</speak>", True),
        ("<speaker>Hi", False),
        ("Use <speak> tags.", False),
        ("Plain text.", False),
    ],
)
def test_detection(text: str, detected: bool) -> None:
    assert looks_like_ssml(text) is detected


def test_ssml_false_reads_markup_as_text() -> None:
    (chunk,) = chunk_text("<speak>Hi</speak>", 100, ssml=False, normalize=False)
    assert chunk.text == "<speak>Hi</speak>"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<speak>unclosed", "malformed SSML: no element found"),
        ("<speak><p>x</s></speak>", "malformed SSML: mismatched tag"),
        ("<speak>x</speak>y", "malformed SSML: junk after document element"),
        ("<speak>&nbsp;</speak>", "malformed SSML: undefined entity"),
        ("<speak a='1' a='2'>x</speak>", "malformed SSML: duplicate attribute"),
        ("<?xml version='1.0'?><p>x</p>", "must start with <speak>, not <p>"),
        ("<speak><audio src='x.wav'/></speak>", "unsupported SSML tag <audio>"),
        ("<speak><phoneme ph='x'>y</phoneme></speak>", "unsupported SSML tag <phoneme>"),
        ("<speak><speak>x</speak></speak>", "<speak> cannot be nested"),
        ("<speak><sub alias='x'><s>y</s></sub></speak>", "<sub> holds only text, not <s>"),
        ("<speak><sub>x</sub></speak>", "<sub> needs an alias"),
        ("<speak><say-as>x</say-as></speak>", "<say-as> needs an interpret-as"),
        ("<speak><voice>x</voice></speak>", "<voice> needs a name"),
        ("<speak><break time='forever'/></speak>", "<break time='forever'>"),
        ("<speak><break time='11s'/></speak>", "longer than 10000 ms"),
        ("<speak><break strength='huge'/></speak>", "<break strength='huge'>"),
        ("<speak><prosody rate='400%'>x</prosody></speak>", "gives speed 4.0"),
        ("<speak><prosody rate='slow'><prosody rate='50%'>x</prosody></prosody></speak>", "gives speed 0.4"),
        ("<speak><prosody rate='zippy'>x</prosody></speak>", "<prosody rate='zippy'>"),
        ("<speak><say-as interpret-as='cardinal'>abc</say-as></speak>", "'abc' is not a number"),
        ("<speak><say-as interpret-as='date'>13/45/2020</say-as></speak>", "is not a date"),
        ("<speak><say-as interpret-as='telepathy'>x</say-as></speak>", "'telepathy'> is not supported"),
        ("<speak>" + "<emphasis>" * 70 + "x" + "</emphasis>" * 70 + "</speak>", "deeper than 64"),
    ],
)
def test_refused_documents_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(InvalidRequest, match="^text: ") as err:
        chunk_text(text, 100)
    assert message in str(err.value)
    assert err.value.field == "text"


BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE speak [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{("&lol%s;" % (i - 1 or "")) * 10}">' for i in range(1, 10))
    + "]><speak>&lol9;</speak>"
)


@pytest.mark.parametrize(
    "document",
    [
        BILLION_LAUGHS,
        BILLION_LAUGHS.replace("<!DOCTYPE", "\n<!-- hidden -->\n<!DOCTYPE"),
        '<!DOCTYPE speak [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><speak>&xxe;</speak>',
        '<!DOCTYPE speak SYSTEM "http://127.0.0.1:9/evil.dtd"><speak>x</speak>',
        '<!DOCTYPE speak [<!ENTITY % p SYSTEM "http://127.0.0.1:9/p.dtd"> %p;]><speak>x</speak>',
    ],
)
def test_dtds_and_entities_are_refused_quickly_in_little_memory(document: str) -> None:
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(InvalidRequest, match="must not declare a DTD"):
            chunk_text(document, 100)  # detected as XML, so never read aloud as plain text
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - started < 1.0
    assert peak < 2_000_000, f"peak {peak} bytes"


def test_size_cap() -> None:
    with pytest.raises(InvalidRequest, match="at most 100 are accepted"):
        chunk_text("<speak>" + "x" * 100 + "</speak>", 100, max_ssml_bytes=100)
    big = "<speak>" + "Words here. " * 90_000 + "</speak>"  # about 1.08 MB
    started = time.perf_counter()
    with pytest.raises(InvalidRequest, match="SSML is 1080015 bytes"):
        chunk_text(big, 100)
    assert time.perf_counter() - started < 1.0
