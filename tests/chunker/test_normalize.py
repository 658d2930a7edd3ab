"""English normalisation: what a reader says for the written forms."""

from __future__ import annotations

import pytest

from narrator.chunker import normalize
from narrator.chunker import numbers as num


@pytest.mark.parametrize(
    ("n", "cardinal", "ordinal"),
    [
        (0, "zero", "zeroth"),
        (1, "one", "first"),
        (2, "two", "second"),
        (3, "three", "third"),
        (12, "twelve", "twelfth"),
        (20, "twenty", "twentieth"),
        (21, "twenty-one", "twenty-first"),
        (105, "one hundred five", "one hundred fifth"),
        (1_000, "one thousand", "one thousandth"),
        (1_234_567, "one million two hundred thirty-four thousand five hundred sixty-seven",
         "one million two hundred thirty-four thousand five hundred sixty-seventh"),
        (-7, "minus seven", "minus seventh"),
    ],
)  # fmt: skip
def test_cardinals_and_ordinals(n: int, cardinal: str, ordinal: str) -> None:
    assert num.cardinal(n) == cardinal
    assert num.ordinal(n) == ordinal


@pytest.mark.parametrize(
    ("year", "words"),
    [
        (1066, "ten sixty-six"),
        (1900, "nineteen hundred"),
        (1905, "nineteen oh five"),
        (1984, "nineteen eighty-four"),
        (2000, "two thousand"),
        (2007, "two thousand seven"),
        (2021, "twenty twenty-one"),
    ],
)
def test_years(year: int, words: str) -> None:
    assert num.year(year) == words


def test_huge_numbers_are_read_digit_by_digit() -> None:
    assert num.cardinal(10**15) == "one " + " ".join(["zero"] * 15)


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        # money
        ("It costs $3.50.", "It costs three dollars and fifty cents."),
        ("$1 or $0.01", "one dollar or one cent"),
        ("$1,000,000 prize", "one million dollars prize"),
        ("$1.5 million", "one point five million dollars"),
        ("a $5k bonus", "a five thousand dollars bonus"),
        ("£5 and €20.10", "five pounds and twenty euros and ten cents"),
        ("¥500", "five hundred yen"),
        # numbers
        ("3.14", "three point one four"),
        ("-5 degrees", "minus five degrees"),
        ("1,234 people", "one thousand two hundred thirty-four people"),
        ("Agent 007", "Agent zero zero seven"),
        ("50% and 3.5%", "fifty percent and three point five percent"),
        ("the 1st, 22nd and 103rd", "the first, twenty-second and one hundred third"),
        ("pages 10-20", "pages ten to twenty"),
        ("1990–1995", "nineteen ninety to nineteen ninety-five"),
        ("1/2 cup", "one half cup"),
        ("5 km in 20 min", "five kilometers in twenty minutes"),
        ("1 kg", "one kilogram"),
        ("20°C", "twenty degrees Celsius"),
        ("#1 hit", "number one hit"),
        ("MP3 and 3D", "MP3 and 3D"),
        # years, dates, times
        ("In 1984, and in 2021.", "In nineteen eighty-four, and in twenty twenty-one."),
        ("the 1990s and the '80s", "the nineteen nineties and the eighties"),
        ("On March 3, 2021", "On March third, twenty twenty-one"),
        ("on Jan. 5", "on January fifth"),
        ("4 July 1776", "the fourth of July, seventeen seventy-six"),
        ("2021-03-04", "March fourth, twenty twenty-one"),
        ("3/4/2021", "March fourth, twenty twenty-one"),
        ("25/12/2020", "December twenty-fifth, twenty twenty"),
        ("at 10:30 a.m.", "at ten thirty A M."),
        ("at 9:05 and 14:00", "at nine oh five and fourteen hundred"),
        ("at 10:00", "at ten o'clock"),
        ("at 5pm sharp", "at five P M sharp"),
        ("Call 555-123-4567.", "Call five five five, one two three, four five six seven."),
        # abbreviations
        ("Dr. Smith", "Doctor Smith"),
        ("Mr Smith and Mrs. Jones", "Mister Smith and Missus Jones"),
        ("St. Paul lived on Baker St.", "Saint Paul lived on Baker Street."),
        ("on Elm Dr. near", "on Elm Drive near"),
        ("fruit, e.g. apples, i.e. red", "fruit, for example apples, that is red"),
        ("pens, etc.", "pens, et cetera."),
        ("Smith Jr. and Acme Inc.", "Smith Junior and Acme Incorporated."),
        ("No. 5 but no.", "number five but no."),
        ("see p. 12 and Fig. 3", "see page twelve and figure three"),
        ("cats vs. dogs", "cats versus dogs"),
        ("the U.S. Army", "the U S Army"),
        ("Chapter IV", "Chapter four"),
        ("World War II", "World War two"),
        ("Henry VIII and Elizabeth I.", "Henry the eighth and Elizabeth the first."),
        ("said Charles I think", "said Charles I think"),
        ("J. R. R. Tolkien", "J. R. R. Tolkien"),
        # links and symbols
        ("see https://www.example.com/a-b?x=1.", "see w w w dot example dot com slash a dash b."),
        ("visit example.org/docs", "visit example dot org slash docs"),
        ("mail jane.doe@example.co.uk", "mail jane dot doe at example dot co dot uk"),
        ("salt & pepper", "salt and pepper"),
        ("I ❤️ it 😀!", "I it!"),
        ("**bold** text", "bold text"),
        ("plain words stay", "plain words stay"),
        ("", ""),
    ],
)
def test_normalize(text: str, spoken: str) -> None:
    assert normalize(text) == spoken


def test_normalize_folds_whitespace() -> None:
    assert normalize("  a \n\n b\t c  ") == "a b c"
