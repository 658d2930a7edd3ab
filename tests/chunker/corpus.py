"""Sample texts shared by the chunker tests and the chunking benchmark."""

from __future__ import annotations

PROSE = """\
CHAPTER I.

It was a bright cold day in April, and the clocks were striking thirteen. Mr. Winston Smith, his chin \
nuzzled into his breast in an effort to escape the vile wind, slipped quickly through the glass doors of \
Victory Mansions, though not quickly enough to prevent a swirl of gritty dust from entering along with him.

Dr. Watson met Mrs. Hudson at 221B Baker St. at 9:30 a.m. on Jan. 3, 1895. They paid $3.50 for tea, i.e. \
rather a lot; e.g. a loaf cost 2.5 cents. "Is it far?" she asked. "About 3.14 miles... maybe more." \
J. R. R. Tolkien wrote it in the U.S. Army barracks, etc. The rest is history!

Chapter 2: The Storm

The wind rose (as it does) and the rain fell -- hard, cold and without mercy; nobody went out. \
Prices rose 15% in the 1990s, from $1,200 to $1.5 million. Visit https://example.com/storm or write to \
storm.desk@example.org for details. It was the 21st of June, 2021 -- or was it 2021-06-22?

- bread
- 2 kg of flour
- milk

Yes.
"""


def english(size: int) -> str:
    """About ``size`` characters of varied English prose (whole copies of PROSE, numbered)."""
    parts = []
    total = 0
    n = 0
    while total < size:
        n += 1
        part = PROSE.replace("CHAPTER I.", f"CHAPTER {n}.")
        parts.append(part)
        total += len(part) + 1
    return "\n".join(parts)[:size]
