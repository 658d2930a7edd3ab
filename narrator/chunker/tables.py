"""Word tables shared by sentence segmentation and English normalisation.

Keys are lower case and without the trailing period.
"""

from __future__ import annotations

# Titles that stand before a name: a period after them never ends a sentence.
TITLES = {
    "mr": "Mister",
    "mrs": "Missus",
    "ms": "Miz",
    "mx": "Mix",
    "dr": "Doctor",
    "prof": "Professor",
    "rev": "Reverend",
    "st": "Saint",
    "mt": "Mount",
    "ft": "Fort",
    "gen": "General",
    "capt": "Captain",
    "cpt": "Captain",
    "lt": "Lieutenant",
    "col": "Colonel",
    "maj": "Major",
    "sgt": "Sergeant",
    "cpl": "Corporal",
    "pvt": "Private",
    "adm": "Admiral",
    "cmdr": "Commander",
    "hon": "Honorable",
    "gov": "Governor",
    "sen": "Senator",
    "rep": "Representative",
    "pres": "President",
    "supt": "Superintendent",
    "insp": "Inspector",
    "det": "Detective",
    "fr": "Father",
    "messrs": "Messieurs",
    "mme": "Madame",
    "mlle": "Mademoiselle",
}

# After a capitalised word these name a street, not a person: "Baker St." is "Baker Street".
STREET_TITLES = {"st": "Street", "dr": "Drive", "mt": "Mount", "ft": "Fort"}

# Abbreviations that end a sentence only when a capitalised word follows ("etc. The").
ABBREVIATIONS = {
    "etc": "et cetera",
    "jr": "Junior",
    "sr": "Senior",
    "inc": "Incorporated",
    "ltd": "Limited",
    "co": "Company",
    "corp": "Corporation",
    "bros": "Brothers",
    "esq": "Esquire",
    "dept": "Department",
    "univ": "University",
    "assn": "Association",
    "ave": "Avenue",
    "blvd": "Boulevard",
    "rd": "Road",
    "ln": "Lane",
    "hwy": "Highway",
    "approx": "approximately",
    "esp": "especially",
    "incl": "including",
    "est": "established",
    "govt": "government",
    "misc": "miscellaneous",
    "fig": "figure",
    "figs": "figures",
    "vol": "volume",
    "vols": "volumes",
    "ch": "chapter",
    "chap": "chapter",
    "sec": "section",
    "no": "number",
    "nos": "numbers",
    "pp": "pages",
    "p": "page",
    "ed": "edition",
    "eds": "editors",
    "tel": "telephone",
    "ext": "extension",
    "jan": "January",
    "feb": "February",
    "mar": "March",
    "apr": "April",
    "jun": "June",
    "jul": "July",
    "aug": "August",
    "sep": "September",
    "sept": "September",
    "oct": "October",
    "nov": "November",
    "dec": "December",
}

# Abbreviations that follow a number; the unit rules read them ("10 min."), never a sentence end by themselves.
UNIT_ABBREVIATIONS = frozenset(
    {"min", "mins", "hr", "hrs", "yr", "yrs", "oz", "lb", "lbs", "sec", "secs", "ft", "in", "mi"}
)

# Abbreviations read aloud only before a number ("No. 5", "p. 12", "Fig. 3").
BEFORE_NUMBER = frozenset(
    {"no", "nos", "p", "pp", "fig", "figs", "vol", "vols", "ch", "chap", "sec", "ed", "ext", "tel"}
)

# Lower-case abbreviations inside a sentence; a period after them never ends one.
NEVER_END = frozenset({"e.g", "i.e", "cf", "viz", "vs", "v", "al", "ca", "c", "approx"})

# Spoken forms of the lower-case abbreviations and dotted forms.
SPOKEN = {
    "e.g.": "for example",
    "i.e.": "that is",
    "cf.": "compare",
    "viz.": "namely",
    "vs.": "versus",
    "vs": "versus",
    "et al.": "and others",
    "ca.": "circa",
    "ph.d.": "P H D",
    "a.k.a.": "also known as",
    "r.i.p.": "rest in peace",
}

MONTHS = ("January February March April May June July August September October November December").split()
MONTH_NUMBER = {m.lower(): i for i, m in enumerate(MONTHS, 1)}
MONTH_NUMBER.update({m.lower()[:3]: i for i, m in enumerate(MONTHS, 1)})
MONTH_NUMBER["sept"] = 9

# symbol -> (one, many, one hundredth, many hundredths)
CURRENCIES = {
    "$": ("dollar", "dollars", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "€": ("euro", "euros", "cent", "cents"),
    "¥": ("yen", "yen", "", ""),
    "₹": ("rupee", "rupees", "paisa", "paise"),
}

SCALE_SUFFIXES = {
    "k": "thousand",
    "thousand": "thousand",
    "m": "million",
    "mn": "million",
    "million": "million",
    "b": "billion",
    "bn": "billion",
    "billion": "billion",
    "t": "trillion",
    "tn": "trillion",
    "trillion": "trillion",
}

# unit after a number -> (singular, plural)
UNITS = {
    "km": ("kilometer", "kilometers"),
    "cm": ("centimeter", "centimeters"),
    "mm": ("millimeter", "millimeters"),
    "kg": ("kilogram", "kilograms"),
    "mg": ("milligram", "milligrams"),
    "g": ("gram", "grams"),
    "lb": ("pound", "pounds"),
    "lbs": ("pound", "pounds"),
    "oz": ("ounce", "ounces"),
    "ft": ("foot", "feet"),
    "mi": ("mile", "miles"),
    "mph": ("mile per hour", "miles per hour"),
    "km/h": ("kilometer per hour", "kilometers per hour"),
    "kph": ("kilometer per hour", "kilometers per hour"),
    "ml": ("milliliter", "milliliters"),
    "°c": ("degree Celsius", "degrees Celsius"),
    "°f": ("degree Fahrenheit", "degrees Fahrenheit"),
    "°": ("degree", "degrees"),
    "kb": ("kilobyte", "kilobytes"),
    "mb": ("megabyte", "megabytes"),
    "gb": ("gigabyte", "gigabytes"),
    "tb": ("terabyte", "terabytes"),
    "hz": ("hertz", "hertz"),
    "khz": ("kilohertz", "kilohertz"),
    "mhz": ("megahertz", "megahertz"),
    "ghz": ("gigahertz", "gigahertz"),
    "kw": ("kilowatt", "kilowatts"),
    "kwh": ("kilowatt hour", "kilowatt hours"),
    "ms": ("millisecond", "milliseconds"),
    "hr": ("hour", "hours"),
    "hrs": ("hour", "hours"),
    "min": ("minute", "minutes"),
    "mins": ("minute", "minutes"),
    "sec": ("second", "seconds"),
    "secs": ("second", "seconds"),
}

FRACTIONS = {
    "1/2": "one half",
    "1/3": "one third",
    "2/3": "two thirds",
    "1/4": "one quarter",
    "3/4": "three quarters",
    "1/8": "one eighth",
    "24/7": "twenty-four seven",
    "½": "one half",
    "¼": "one quarter",
    "¾": "three quarters",
    "⅓": "one third",
    "⅔": "two thirds",
}

# A Roman numeral after these words is a cardinal: "Chapter IV" -> "Chapter four".
ROMAN_KEYWORDS = frozenset(
    {"chapter", "part", "book", "volume", "vol", "act", "scene", "section", "appendix", "war", "phase", "round"}
)

# A Roman numeral after these names is a regnal ordinal: "Henry VIII" -> "Henry the eighth".
REGNAL_NAMES = frozenset(
    """Henry Edward George William Elizabeth Charles James Louis Richard John Mary Anne Victoria Pius Leo
    Benedict Gregory Innocent Clement Alexander Peter Frederick Philip Felipe Juan Carlos Ferdinand Napoleon
    Ramesses Ptolemy Constantine Nicholas Ivan Catherine Gustav Olaf Harald Haakon Christian Sebastian Paul
    Francis Urban Boniface Sixtus Julius Wilhelm Otto Rudolf Ludwig Amenhotep Thutmose Kamehameha""".split()
)

SYMBOLS = {
    "&": "and",
    "×": "times",
    "÷": "divided by",
    "±": "plus or minus",
    "§": "section",
    "¶": "paragraph",
    "№": "number",
}

# URL and e-mail punctuation, read out.
URL_SYMBOLS = {
    ".": "dot",
    "/": "slash",
    "-": "dash",
    "_": "underscore",
    "@": "at",
    "+": "plus",
    ":": "colon",
    "~": "tilde",
    "=": "equals",
    "#": "hash",
    "%": "percent",
    "&": "and",
}
