"""English text normalisation: what a reader says for numbers, money, dates, symbols and abbreviations.

One regular expression with a named alternative per rule, tried in order at each position;
each rule's reader turns its match into words using the tables in :mod:`.tables`. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from . import numbers as num
from .tables import (
    ABBREVIATIONS,
    BEFORE_NUMBER,
    CURRENCIES,
    FRACTIONS,
    MONTH_NUMBER,
    MONTHS,
    REGNAL_NAMES,
    ROMAN_KEYWORDS,
    SCALE_SUFFIXES,
    SPOKEN,
    STREET_TITLES,
    SYMBOLS,
    TITLES,
    UNITS,
    URL_SYMBOLS,
)

_MONTH_ALT = "|".join(
    [m for m in MONTHS] + ["Jan", "Feb", "Mar", "Apr", "Jun", "Jul", "Aug", "Sept", "Sep", "Oct", "Nov", "Dec"]
)
_INT = r"\d{1,3}(?:,\d{3})+(?!\d)|\d+"
_TLDS = "com|org|net|edu|gov|io|dev|ai|app|co|uk|de|fr|info|biz|me|tv|us|ca|au|eu"
_CLOSERS = "\"'”’)]}»"

_RULES = [
    ("email", r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),
    ("url", rf"(?i:\b(?:https?://|www\.)[^\s<>\"]+|\b(?:[a-z0-9-]+\.)+(?:{_TLDS})\b(?:/[^\s<>\"]*)?)"),
    (
        "cur",
        rf"(?P<cur_sym>[$£€¥₹])\s?(?P<cur_int>{_INT})(?:\.(?P<cur_frac>\d+))?"
        r"(?:\s?(?P<cur_scale>(?i:thousand|million|billion|trillion|bn|mn|tn|[kmbt]))\b)?",
    ),
    ("iso", r"\b(?P<iso_y>\d{4})-(?P<iso_m>0?[1-9]|1[0-2])-(?P<iso_d>0?[1-9]|[12]\d|3[01])\b"),
    ("sdate", r"\b(?P<sd_a>\d{1,2})/(?P<sd_b>\d{1,2})/(?P<sd_y>\d{4}|\d{2})\b"),
    (
        "md",
        rf"\b(?P<md_m>{_MONTH_ALT})\.?\s+(?P<md_d>[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?\b(?:,?\s+(?P<md_y>\d{{4}})\b)?",
    ),
    (
        "dm",
        r"\b(?P<dm_d>[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<dm_m>"
        + "|".join(MONTHS)
        + r")\b(?:,?\s+(?P<dm_y>\d{4})\b)?",
    ),
    ("time", r"\b(?P<t_h>[01]?\d|2[0-3]):(?P<t_m>[0-5]\d)(?::[0-5]\d)?(?:\s?(?P<t_ap>[aApP])\.?[mM]\b\.?)?"),
    ("tap", r"\b(?P<tap_h>1[0-2]|0?[1-9])\s?(?P<tap_ap>[aApP])\.?[mM]\b\.?"),
    ("phone", r"(?:\+?1[-.\s])?(?:\(\d{3}\)\s?|\b\d{3}[-.\s])?\b\d{3}-\d{4}\b"),
    ("numabbr", r"\b(?P<na_w>(?i:no|nos|p|pp|fig|figs|vol|vols|ch|chap|sec|ed|ext|tel))\.(?=\s*\d)"),
    ("pct", rf"(?<![\w.])(?P<pct_neg>-)?(?P<pct_int>{_INT})(?:\.(?P<pct_frac>\d+))?\s?%"),
    ("decade", r"\b(?P<dec_y>1[1-9]\d0|20[0-9]0)s\b|['’](?P<dec_short>\d0)s\b"),
    ("ord", r"\b(?P<ord_n>\d+)(?:st|nd|rd|th|ST|ND|RD|TH)\b"),
    (
        "unit",
        rf"(?<![\w.,])(?P<unit_int>{_INT})(?:\.(?P<unit_frac>\d+))?\s?(?P<unit_name>km/h|kWh|kHz|MHz|GHz|km|kg|mg|ml|"
        r"cm|mm|mph|kph|lbs|lb|oz|ft|mi|KB|kB|MB|GB|TB|Hz|kW|ms|hrs|hr|mins|min|secs|sec|g|°C|°F|°)(?!\w)",
    ),
    ("range", r"(?<![\w.,-])(?P<rg_a>\d{1,4})\s?[–—-]\s?(?P<rg_b>\d{1,4})(?![\w,]|\.\d)"),
    ("frac", r"(?<![\w/])(?P<frac_v>\d{1,2}/\d{1,2})(?![\w/])|[½¼¾⅓⅔]"),
    ("roman", r"[IVXLCDM]+\b"),
    ("spoken", r"(?i:\be\.g\.|\bi\.e\.|\bet al\.|\ba\.k\.a\.|\bph\.d\.|\bvs\.?(?=\s)|\bcf\.|\bviz\.|\bca\.(?=\s*\d))"),
    (
        "abbr",
        r"\b(?P<abbr_w>(?i:" + "|".join(sorted({*TITLES, *ABBREVIATIONS}, key=len, reverse=True)) + r"))\."
        r"(?=[\s,;:" + re.escape(_CLOSERS) + r"]|$)",
    ),
    ("title", r"\b(?P<title_w>Mr|Mrs|Ms|Dr|Prof|St)(?=\s+[A-Z])"),
    ("acro", r"\b(?:[A-Za-z]\.){2,}(?![A-Za-z])"),
    ("num", rf"(?<![\w.,])(?P<num_neg>-(?=\d))?(?P<num_int>{_INT})(?:\.(?P<num_frac>\d+))?(?!\w|[.,]\d)"),
    ("sym", "[" + "".join(SYMBOLS) + "]"),
    ("hash", r"#(?=\d)"),
    ("emoji", "[\U0001f000-\U0001faff\u2600-\u27bf\u200b\u200d\u20e3\ufe0e\ufe0f\ufeff]+"),
    ("decor", r"\*+|={3,}|~{3,}|_{3,}|#{3,}|-{3,}"),
]
_LINK_RULES = ("email", "url")
_NUMBER_RULES = (
    *("cur", "iso", "sdate", "md", "dm", "time", "tap", "phone", "numabbr"),
    *("pct", "decade", "ord", "unit", "range", "frac", "num", "hash"),
)
_WORD_RULES = ("roman", "spoken", "abbr", "title", "acro")
_SYMBOL_RULES = ("sym", "emoji", "decor")


def _compile(names: tuple[str, ...], starts: str) -> re.Pattern[str]:
    """One pattern for a pass. ``starts`` is a cheap test of where a match may begin: without it every
    alternative is tried at every position, which makes the pass an order of magnitude slower."""
    rules = dict(_RULES)
    return re.compile(starts + "(?:" + "|".join(f"(?P<{name}>{rules[name]})" for name in names) + ")")


_SYMBOL_CHARS = "&×÷±§¶№*=~_#\\-\U0001f000-\U0001faff\u2600-\u27bf\u200b\u200d\u20e3\ufe0e\ufe0f\ufeff"
_LINK_START = r"(?<![\w.+-])(?=[\w.+-])"
_NUMBER_START = r"(?=[\d$£€¥₹½¼¾⅓⅔#'’(+\-JFMASONDnNpPfFvVcCsSeEtT])"
_WORD_START = r"(?<![A-Za-z])(?=[A-Za-z]{1,6}\.|[IVXLCDM]|Mr|Ms|Dr|Prof|St|[vV]s\b|et al)"
_SYMBOL_START = f"(?=[{_SYMBOL_CHARS}])"
_TLD = re.compile(rf"\.(?:{_TLDS})\b", re.IGNORECASE)


def _has_link(text: str) -> bool:
    return "@" in text or "://" in text or "www." in text or _TLD.search(text) is not None


# Passes in order, each run only when its gate finds something: links hold digits and dots,
# numbers hold dots ("3.14", "p.m."), so words (abbreviations) come after them.
_PASSES: tuple[tuple[Callable[[str], object] | None, re.Pattern[str]], ...] = (
    (_has_link, _compile(_LINK_RULES, _LINK_START)),
    (re.compile(r"[\d½¼¾⅓⅔]").search, _compile(_NUMBER_RULES, _NUMBER_START)),
    (None, _compile(_WORD_RULES, _WORD_START)),
    (re.compile(f"[{_SYMBOL_CHARS}]").search, _compile(_SYMBOL_RULES, _SYMBOL_START)),
)
_SPACE_BEFORE_STOP = re.compile(r"\s+(?=[.,!?;:](?!\w))")


def normalize(text: str) -> str:
    """``text`` as an English reader would say it, whitespace collapsed."""
    said, spaced = _run_passes(text)
    return _finish(said, spaced)


# Texts normalised together are joined by this separator: no rule matches it or across it,
# and a period before it is kept as a sentence end.
_SEP = "\x00"
_JOIN = f" {_SEP} "


def normalize_many(texts: list[str]) -> list[str]:
    """``normalize`` of each text. Each pass runs once over all the texts its gate admits, joined,
    which is much faster than a pass per text."""
    if any(_SEP in t for t in texts):
        return [normalize(t) for t in texts]
    current = list(texts)
    spaced = [False] * len(texts)
    for gate, pattern in _PASSES:
        chosen = [i for i, t in enumerate(current) if gate is None or gate(t)]
        if len(chosen) == 1:
            current[chosen[0]] = pattern.sub(_read, current[chosen[0]])
        elif chosen:
            parts = pattern.sub(_read, _JOIN.join(current[i] for i in chosen)).split(_SEP)
            if len(parts) != len(chosen):  # pragma: no cover - no rule produces or consumes the separator
                return [normalize(t) for t in texts]
            for i, part in zip(chosen, parts, strict=True):
                current[i] = part
        if pattern is _PASSES[-1][1]:
            for i in chosen:
                spaced[i] = True
    return [_finish(t, s) for t, s in zip(current, spaced, strict=True)]


def _run_passes(text: str) -> tuple[str, bool]:
    spaced = False
    for gate, pattern in _PASSES:
        if gate is None or gate(text):
            text = pattern.sub(_read, text)
            spaced = pattern is _PASSES[-1][1]
    return text, spaced


def _finish(text: str, spaced: bool) -> str:
    text = " ".join(text.split())
    # Symbols and emoji read as words or nothing can leave a space before the punctuation after them.
    return _SPACE_BEFORE_STOP.sub("", text) if spaced else text


def _read(m: re.Match[str]) -> str:
    name = m.lastgroup
    assert name is not None
    return _READERS[name](m)


def _stop(m: re.Match[str]) -> str:
    """Keep a period the match swallowed when it also ends the sentence ("at 5 p.m.")."""
    if not m.group().endswith("."):
        return ""
    end = m.end()
    rest = m.string[end : end + 8].lstrip(_CLOSERS + " \t\n")
    return "." if rest.startswith(_SEP) or (not rest and len(m.string) - end <= 8) else ""


def read_url(text: str) -> str:
    """A URL or e-mail address read out: "https://www.example.com/a-b" -> "w w w dot example dot com slash a dash b"."""
    text = re.sub(r"^(?i:https?://)", "", text)
    text = re.split(r"[?#]", text, maxsplit=1)[0].rstrip("/")
    if text.lower().startswith("www."):
        text = "w w w." + text[4:]
    parts = re.split(r"([./\-_@+:~=#%&])", text)
    words = [URL_SYMBOLS.get(p, p) for p in parts if p]
    return " ".join(w for w in words if w)


def _url(m: re.Match[str]) -> str:
    raw = m.group()
    core = raw.rstrip(".,;:!?" + _CLOSERS)
    return read_url(core) + raw[len(core) :]


def _currency(m: re.Match[str]) -> str:
    one, many, cent, cents = CURRENCIES[m["cur_sym"]]
    whole, frac, scale = m["cur_int"], m["cur_frac"], m["cur_scale"]
    if scale:
        amount = num.decimal(whole, frac or "")
        return f"{amount} {SCALE_SUFFIXES[scale.lower()]} {many}"
    if frac and (len(frac) > 2 or not cent):
        return f"{num.decimal(whole, frac)} {many}"
    plain = whole.replace(",", "")
    hundredths = int(frac.ljust(2, "0")) if frac else 0
    parts = []
    if plain.strip("0") or not hundredths:
        parts.append(f"{num.number(plain)} {one if plain == '1' else many}")
    if hundredths:
        parts.append(f"{num.cardinal(hundredths)} {cent if hundredths == 1 else cents}")
    return " and ".join(parts)


def say_date(year: int | None, month: int | None, day: int | None) -> str:
    """A calendar date as words; any part may be missing."""
    words = []
    if month:
        words.append(MONTHS[month - 1])
    if day:
        words.append(num.ordinal(day) if month else f"the {num.ordinal(day)}")
    text = " ".join(words)
    if year is not None:
        text = f"{text}, {num.year(year)}" if text else num.year(year)
    return text


def _iso(m: re.Match[str]) -> str:
    return say_date(int(m["iso_y"]), int(m["iso_m"]), int(m["iso_d"]))


def _slash_date(m: re.Match[str]) -> str:
    a, b, y = int(m["sd_a"]), int(m["sd_b"]), m["sd_y"]
    year = int(y) + (2000 if int(y) < 50 else 1900) if len(y) == 2 else int(y)
    month, day = (b, a) if a > 12 else (a, b)  # US order unless the first part cannot be a month
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return m.group()
    return say_date(year, month, day)


def _month_day(m: re.Match[str]) -> str:
    month = MONTH_NUMBER[m["md_m"].lower()]
    year = int(m["md_y"]) if m["md_y"] else None
    return say_date(year, month, int(m["md_d"]))


def _day_month(m: re.Match[str]) -> str:
    text = f"the {num.ordinal(int(m['dm_d']))} of {m['dm_m']}"
    if m["dm_y"]:
        text += f", {num.year(int(m['dm_y']))}"
    return text


def _ampm(letter: str | None) -> str:
    return f" {letter.upper()} M" if letter else ""


def _time(m: re.Match[str]) -> str:
    hour, minute = int(m["t_h"]), int(m["t_m"])
    if minute == 0:
        text = num.cardinal(hour) + ("" if m["t_ap"] else " o'clock" if hour <= 12 else " hundred")
    elif minute < 10:
        text = f"{num.cardinal(hour)} oh {num.cardinal(minute)}"
    else:
        text = f"{num.cardinal(hour)} {num.cardinal(minute)}"
    return text + _ampm(m["t_ap"]) + _stop(m)


def _time_ampm(m: re.Match[str]) -> str:
    return num.cardinal(int(m["tap_h"])) + _ampm(m["tap_ap"]) + _stop(m)


def _phone(m: re.Match[str]) -> str:
    groups = re.findall(r"\d+", m.group())
    return ", ".join(num.digits(g) for g in groups)


def _percent(m: re.Match[str]) -> str:
    text = num.decimal(m["pct_int"], m["pct_frac"] or "")
    return ("minus " if m["pct_neg"] else "") + text + " percent"


def _decade(m: re.Match[str]) -> str:
    if m["dec_short"]:
        return num.plural(num.cardinal(int(m["dec_short"])))
    return num.plural(num.year(int(m["dec_y"])))


def _ordinal(m: re.Match[str]) -> str:
    return num.ordinal_of(m["ord_n"])


def _unit(m: re.Match[str]) -> str:
    amount = num.decimal(m["unit_int"], m["unit_frac"] or "")
    one, many = UNITS[m["unit_name"].lower()]
    single = m["unit_int"] == "1" and not m["unit_frac"]
    return f"{amount} {one if single else many}"


def _side(text: str) -> str:
    value = int(text)
    return num.year(value) if len(text) == 4 and (1100 <= value <= 1999 or 2010 <= value <= 2099) else num.number(text)


def _range(m: re.Match[str]) -> str:
    return f"{_side(m['rg_a'])} to {_side(m['rg_b'])}"


def _fraction(m: re.Match[str]) -> str:
    text = m["frac_v"] or m.group()
    if text in FRACTIONS:
        return FRACTIONS[text]
    top, bottom = text.split("/")
    return f"{num.cardinal(int(top))} over {num.cardinal(int(bottom))}"


def _roman(m: re.Match[str]) -> str:
    """A Roman numeral after a keyword is a number ("Chapter IV"), after a monarch's name an ordinal."""
    numeral = m.group()
    start = m.start()
    if start < 2 or not m.string[start - 1].isspace():
        return numeral
    before = m.string[max(0, start - 24) : start].rstrip()
    prev = before[before.rfind(" ") + 1 :]
    value = num.roman(numeral)
    if value is None or not prev or not prev[0].isalpha():
        return numeral
    if prev.lower() in ROMAN_KEYWORDS or prev.lower() == "vol.":
        return num.cardinal(value)
    if prev in REGNAL_NAMES:
        rest = m.string[m.end() : m.end() + 4].lstrip()
        # "Charles I was king" is a monarch; "said Charles I think" is a pronoun.
        if numeral == "I" and rest[:1].islower():
            return numeral
        return f"the {num.ordinal(value)}"
    return numeral


def _spoken(m: re.Match[str]) -> str:
    text = m.group()
    return SPOKEN[text.lower()] + _stop(m)


def _words_around(m: re.Match[str]) -> tuple[str, str]:
    before = m.string[max(0, m.start() - 24) : m.start()].rstrip()
    prev = before[before.rfind(" ") + 1 :] if before else ""
    after = m.string[m.end() : m.end() + 8].lstrip(" \t\n" + _CLOSERS)
    return prev, after


def _starts_sentence(m: re.Match[str], prev: str) -> bool:
    """Whether ``prev``, the word before the match, opens the text or a sentence."""
    before = m.string[max(0, m.start() - 24) : m.start()].rstrip()
    head = before[: len(before) - len(prev)].rstrip()
    return (not head and m.start() <= 24 + len(prev)) or head[-1:] in (".", "!", "?")


def _abbreviation(m: re.Match[str]) -> str:
    word = m["abbr_w"]
    key = word.lower()
    prev, after = _words_around(m)
    nxt = after[:1]
    if key in TITLES:
        if key in STREET_TITLES and prev[:1].isupper() and not _starts_sentence(m, prev):
            return STREET_TITLES[key] + _stop(m)
        if nxt.isupper() or key not in STREET_TITLES:
            return TITLES[key] + _stop(m)
        return m.group()
    if key in ABBREVIATIONS:
        if key in BEFORE_NUMBER and not nxt.isdigit():
            return m.group()
        expansion = ABBREVIATIONS[key]
        if word[0].isupper() and expansion[0].islower() and (not prev or prev[-1] in ".!?"):
            expansion = expansion[0].upper() + expansion[1:]
        return expansion + _stop(m)
    if len(word) == 1 and word.isupper():
        return m.group()  # an initial: "J. R. R. Tolkien"
    return m.group()


def _title(m: re.Match[str]) -> str:
    return TITLES[m["title_w"].lower()]


def _acronym(m: re.Match[str]) -> str:
    letters = [c.upper() for c in m.group() if c.isalpha()]
    return " ".join(letters) + _stop(m)


def _number(m: re.Match[str]) -> str:
    whole, frac, neg = m["num_int"], m["num_frac"], m["num_neg"]
    if frac is not None:
        text = num.decimal(whole, frac)
    elif "," not in whole and len(whole) == 4 and not neg:
        text = _side(whole)
    else:
        text = num.number(whole)
    return ("minus " if neg else "") + text


_READERS: dict[str, Callable[[re.Match[str]], str]] = {
    "email": _url,
    "url": _url,
    "cur": _currency,
    "iso": _iso,
    "sdate": _slash_date,
    "md": _month_day,
    "dm": _day_month,
    "time": _time,
    "tap": _time_ampm,
    "phone": _phone,
    "numabbr": lambda m: ABBREVIATIONS[m["na_w"].lower()],
    "pct": _percent,
    "decade": _decade,
    "ord": _ordinal,
    "unit": _unit,
    "range": _range,
    "frac": _fraction,
    "roman": _roman,
    "spoken": _spoken,
    "abbr": _abbreviation,
    "title": _title,
    "acro": _acronym,
    "num": _number,
    "sym": lambda m: f" {SYMBOLS[m.group()]} ",
    "hash": lambda m: "number ",
    "emoji": lambda m: " ",
    "decor": lambda m: " ",
}
assert set(_READERS) == {name for name, _ in _RULES} == {*_LINK_RULES, *_NUMBER_RULES, *_WORD_RULES, *_SYMBOL_RULES}


def spell_out(text: str) -> str:
    """say-as characters: each letter and digit on its own."""
    out = []
    for c in text:
        if c.isdigit() and c.isascii():
            out.append(num.digits(c))
        elif c.isalnum():
            out.append(c.upper())
    return " ".join(out)
