"""chunk_text on plain text: sizes, boundaries, spoken text and the span map."""

from __future__ import annotations

import itertools
import time

import pytest

from narrator.chunker import Boundary, Chunk, chunk_text, estimated_seconds, speaker_text
from narrator.errors import InvalidRequest, ModelError
from tests.chunker.corpus import PROSE, english


def rows(text: str, max_chars: int, **kw: object) -> list[tuple[str, str, str]]:
    return [(c.text, c.boundary.value, c.spoken) for c in chunk_text(text, max_chars, **kw)]  # type: ignore[arg-type]


def covers(text: str, chunks: list[Chunk]) -> bool:
    return "".join("".join(text[c.start : c.end].split()) for c in chunks) == "".join(text.split())


@pytest.mark.parametrize(
    ("name", "text", "max_chars", "expected"),
    [
        (
            "prose packs whole sentences",
            "It was late. The rain fell. We waited for the bus, which never came. Then we walked home.",
            40,
            [
                ("It was late. The rain fell.", "sentence", "It was late. The rain fell."),
                ("We waited for the bus, which never came.", "sentence", "We waited for the bus, which never came."),
                ("Then we walked home.", "end", "Then we walked home."),
            ],
        ),
        (
            "abbreviations do not end sentences",
            "Dr. Smith met Mrs. Jones at 5 p.m. on Baker St. in the U.S. capital. It rained.",
            80,
            [
                (
                    "Dr. Smith met Mrs. Jones at 5 p.m. on Baker St. in the U.S. capital.",
                    "sentence",
                    "Doctor Smith met Missus Jones at five P M on Baker Street in the U S capital.",
                ),
                ("It rained.", "end", "It rained."),
            ],
        ),
        (
            "dialogue keeps quotes with their sentence",
            '"Where are you going?" she asked.\n\n"Out," he said. "Don\'t wait up."',
            200,
            [
                ('"Where are you going?" she asked.', "paragraph", '"Where are you going?" she asked.'),
                ('"Out," he said. "Don\'t wait up."', "end", '"Out," he said. "Don\'t wait up."'),
            ],
        ),
        (
            "chapter headings are boundaries on both sides",
            "CHAPTER IV\n\nIt was a dark and stormy night.\n\nCHAPTER V.\n\nMorning came.",
            60,
            [
                ("CHAPTER IV", "heading", "CHAPTER four."),
                ("It was a dark and stormy night.", "heading", "It was a dark and stormy night."),
                ("CHAPTER V.", "heading", "CHAPTER five."),
                ("Morning came.", "end", "Morning came."),
            ],
        ),
        (
            "markdown and titled headings",
            "# The Storm\nWind rose.\n\nChapter 3: The Calm\nRain fell.",
            60,
            [
                ("# The Storm", "heading", "The Storm."),
                ("Wind rose.", "heading", "Wind rose."),
                ("Chapter 3: The Calm", "heading", "Chapter three: The Calm."),
                ("Rain fell.", "end", "Rain fell."),
            ],
        ),
        (
            "list items are read as units, bullets dropped",
            "Shopping:\n- eggs\n- 2 kg of flour\n* milk\n1. bread\n2) jam",
            200,
            [
                (
                    "Shopping:\n- eggs\n- 2 kg of flour\n* milk\n1. bread\n2) jam",
                    "end",
                    "Shopping: eggs. two kilograms of flour. milk. one, bread. two, jam.",
                ),
            ],
        ),
        (
            "hard-wrapped lines are one paragraph",
            "It was a long line\nwrapped by hand at\nseventy columns. Then it ended.",
            200,
            [
                (
                    "It was a long line\nwrapped by hand at\nseventy columns. Then it ended.",
                    "end",
                    "It was a long line wrapped by hand at seventy columns. Then it ended.",
                )
            ],
        ),
        (
            "no punctuation: clause boundaries, then words",
            "the wind rose and the rain fell and nobody went out that night, nor the next, because the storm"
            " would not stop; it went on and on",
            50,
            [
                (
                    "the wind rose and the rain fell and nobody went",
                    "word",
                    "the wind rose and the rain fell and nobody went",
                ),
                ("out that night, nor the next,", "clause", "out that night, nor the next,"),
                ("because the storm would not stop;", "clause", "because the storm would not stop;"),
                ("it went on and on", "end", "it went on and on."),
            ],
        ),
        (
            "URLs and numbers are read out",
            "Visit https://example.com/docs or mail help@example.org. It costs $3.50, 15% less than in 1999.",
            200,
            [
                (
                    "Visit https://example.com/docs or mail help@example.org. It costs $3.50, 15% less than in 1999.",
                    "end",
                    "Visit example dot com slash docs or mail help at example dot org. It costs three dollars and"
                    " fifty cents, fifteen percent less than in nineteen ninety-nine.",
                )
            ],
        ),
        (
            "CJK: sentence ends, then clause marks, no spaces added",
            "今天天气很好。我们去公园吧！好吗？然后我们一起吃饭，喝茶，聊天，一直到很晚才回家。",
            12,
            [
                ("今天天气很好。", "sentence", "今天天气很好。"),
                ("我们去公园吧！好吗？", "sentence", "我们去公园吧！好吗？"),
                ("然后我们一起吃饭，", "clause", "然后我们一起吃饭，"),
                ("喝茶，聊天，", "clause", "喝茶，聊天，"),
                ("一直到很晚才回家。", "end", "一直到很晚才回家。"),
            ],
        ),
        (
            "CJK without punctuation splits between characters",
            "一二三四五六七八九十",
            4,
            [("一二三四", "word", "一二三四"), ("五六七八", "word", "五六七八"), ("九十", "end", "九十。")],
        ),
        (
            "emoji do not break anything and are not read",
            "We won 🎉🎉! Family: 👩\u200d👩\u200d👧. Flags 🇫🇷🇩🇪 wave.",
            16,
            [
                ("We won 🎉🎉!", "sentence", "We won!"),
                ("Family: 👩\u200d👩\u200d👧.", "sentence", "Family:."),
                ("Flags 🇫🇷🇩🇪 wave.", "end", "Flags wave."),
            ],
        ),
        (
            "a scene break is kept in a span but not read",
            "The door shut.\n\n* * *\n\nMorning came.",
            200,
            [("The door shut.\n\n* * *", "paragraph", "The door shut."), ("Morning came.", "end", "Morning came.")],
        ),
    ],
)
def test_plain_text(name: str, text: str, max_chars: int, expected: list[tuple[str, str, str]]) -> None:
    assert rows(text, max_chars, min_chars=0) == expected
    assert covers(text, chunk_text(text, max_chars, min_chars=0))


def test_normalize_off_keeps_the_words_as_written() -> None:
    text = "Dr. Smith paid $3.50 on 2021-03-04.\n- at 5 p.m."
    (chunk,) = chunk_text(text, 200, normalize=False)
    assert chunk.spoken == "Dr. Smith paid $3.50 on 2021-03-04. at 5 p.m."
    (chunk,) = chunk_text(text, 200, language="zh")
    assert chunk.spoken == "Dr. Smith paid $3.50 on 2021-03-04. at 5 p.m."


def test_a_word_longer_than_a_chunk_stands_alone() -> None:
    word = "supercalifragilisticexpialidocious"
    chunks = chunk_text(f"a {word} b", 10, min_chars=0)
    assert [c.text for c in chunks] == ["a", word, "b"]
    assert [c.boundary for c in chunks] == [Boundary.WORD, Boundary.WORD, Boundary.END]


def test_a_cut_inside_a_sentence_drops_abbreviation_periods() -> None:
    chunks = chunk_text("He met Mrs. Jones and Mr. Smith at the big old house by the sea", 20, min_chars=0)
    assert [c.spoken for c in chunks] == [
        "He met Missus Jones",
        "and Mister Smith at",
        "the big old house",
        "by the sea.",
    ]


def test_spoken_length_counts_towards_the_limit() -> None:
    # "$1,234,567.89" is 13 characters written and 100 spoken.
    chunks = chunk_text("Pay $1,234,567.89 now. Then rest.", 60, min_chars=0)
    assert all(len(c.spoken) <= 60 or len(c.text.split()) == 1 for c in chunks)
    assert len(chunks) > 1


def test_short_sentences_merge_with_neighbours() -> None:
    text = "Yes.\n\nNo.\n\nA much longer paragraph that says a lot more than the others do.\n\nOK."
    assert [c.text for c in chunk_text(text, 200, min_chars=0)] == [
        "Yes.",
        "No.",
        "A much longer paragraph that says a lot more than the others do.",
        "OK.",
    ]
    (merged,) = chunk_text(text, 200, min_chars=20)
    assert merged.spoken == "Yes. No. A much longer paragraph that says a lot more than the others do. OK."


def test_a_short_tail_borrows_from_the_chunk_before() -> None:
    text = "One two three four five. Six seven eight nine ten. Eleven twelve thirteen. Ok."
    chunks = chunk_text(text, 55, min_chars=20)
    assert [c.text for c in chunks] == [
        "One two three four five. Six seven eight nine ten.",
        "Eleven twelve thirteen. Ok.",
    ]


def test_a_short_heading_joins_what_follows() -> None:
    text = "The end of the previous chapter, which is long enough to stand.\n\nCHAPTER II\n\nIt began again."
    chunks = chunk_text(text, 80, min_chars=30)
    assert [c.text for c in chunks] == [
        "The end of the previous chapter, which is long enough to stand.",
        "CHAPTER II\n\nIt began again.",
    ]
    assert chunks[0].boundary == Boundary.HEADING
    assert chunks[1].spoken == "CHAPTER two. It began again."


def test_default_min_chars_follows_max_chars() -> None:
    assert len(chunk_text("Hi. There.", 100)) == 1
    assert len(chunk_text("Hi.\n\nThere.", 8)) == 2  # min is max // 4 = 2


@pytest.mark.parametrize("text", ["", "   \n\n\t "])
def test_empty_text_gives_no_chunks(text: str) -> None:
    assert chunk_text(text, 100) == []


def test_max_chars_must_be_positive() -> None:
    with pytest.raises(InvalidRequest, match="max_chars"):
        chunk_text("Hello.", 0)


def test_windows_line_ends() -> None:
    text = "First paragraph.\r\n\r\nSecond one.\r\nStill second."
    chunks = chunk_text(text, 20, min_chars=0)
    assert [c.text for c in chunks] == ["First paragraph.", "Second one.", "Still second."]
    assert [c.boundary for c in chunks] == [Boundary.PARAGRAPH, Boundary.SENTENCE, Boundary.END]


def test_one_megabyte_is_fast_and_exact() -> None:
    text = english(1_000_000)
    started = time.perf_counter()
    chunks = chunk_text(text, 1200, min_chars=100)
    elapsed = time.perf_counter() - started
    assert elapsed < 10, f"1 MB took {elapsed:.1f} s"
    assert covers(text, chunks)
    assert all(a.end <= b.start for a, b in itertools.pairwise(chunks))
    assert all(len(c.text) <= 1200 and len(c.spoken) <= 1200 for c in chunks)
    assert sum(len(c.spoken) < 100 for c in chunks) <= 1  # only the very end may stay short


def test_chunk_round_trips_through_a_dict() -> None:
    for chunk in chunk_text(PROSE, 300):
        assert Chunk.from_dict(chunk.to_dict()) == chunk
    first = chunk_text(PROSE, 300)[0]
    assert first.to_dict()["boundary"] == first.boundary.value == "sentence"


def test_speaker_text_writes_the_model_format() -> None:
    chunk = Chunk(0, "Hi.", 0, 3, Boundary.END, speaker=2, spoken="Hi.")
    # {n} is the voice slot: speaker 2 alone in its chunk is slot 1, which carries speaker 2's voice.
    assert speaker_text(chunk, "Speaker {n}: {text}") == "Speaker 1: Hi."
    assert chunk.slots.speakers == (2,)
    assert speaker_text(chunk, "{text}") == "Hi."
    with pytest.raises(ModelError, match="speaker_format"):
        speaker_text(chunk, "{name}: {text}")


def test_estimated_seconds() -> None:
    assert estimated_seconds(" ".join(["word"] * 150)) == pytest.approx(60.0)
    assert estimated_seconds(" ".join(["word"] * 150), speed=2.0) == pytest.approx(30.0)
    assert estimated_seconds("今天天气很好") == pytest.approx(1.5)
    chunk = Chunk(0, "a b c", 0, 5, Boundary.END, spoken="a b c")
    assert chunk.words == 3 and chunk.seconds == pytest.approx(1.2)


@pytest.mark.parametrize(
    "text",
    [
        "a. " * 40_000,  # many tiny sentences
        "$1 " * 40_000,  # one sentence that reads three times longer than it is written
        "- x\n" * 30_000,  # a long list
        "1" * 120_000,  # one huge number
        "中文。" * 40_000,
        "word " * 24_000,  # no punctuation at all
    ],
    ids=["tiny-sentences", "money", "list", "digits", "cjk", "no-punctuation"],
)
def test_hostile_shapes_stay_fast_and_exact(text: str) -> None:
    started = time.perf_counter()
    chunks = chunk_text(text, 600, min_chars=40)
    assert time.perf_counter() - started < 5
    assert covers(text, chunks)
    assert all(len(c.spoken) <= 600 or len(c.text.split()) == 1 for c in chunks)
