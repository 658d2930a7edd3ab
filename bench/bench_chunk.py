"""Chunking speed: 1 MB of English through ``chunk_text``, against pysbd's sentence segmentation.

Run: ``python -m bench.bench_chunk``. pysbd gets the text a paragraph at a time, its best
case (given the whole megabyte at once it is several times slower still).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pysbd

from narrator.chunker import chunk_text

Row = tuple[str, float, str, float | None, float | None]

_PARAGRAPHS = [
    "CHAPTER {n}.",
    "It was a bright cold day in April, and the clocks were striking thirteen. Winston Smith, his chin nuzzled "
    "into his breast in an effort to escape the vile wind, slipped quickly through the glass doors of Victory "
    "Mansions, though not quickly enough to prevent a swirl of gritty dust from entering along with him.",
    "Dr. Watson met Mrs. Hudson at 221B Baker St. at 9:30 a.m. on Jan. 3, 1895. They paid $3.50 for tea, i.e. "
    "rather a lot; e.g. a loaf cost 2.5 cents. J. R. R. Tolkien wrote it in the U.S. Army barracks, etc. The "
    "rest is history!",
    '"Is it far?" she asked.\n\n"About three miles... maybe more," he said. "We should go before the light goes."',
    "The wind rose (as it does) and the rain fell, hard, cold and without mercy; nobody went out. Prices rose "
    "15% in the 1990s, from $1,200 to $1.5 million. Visit https://example.com/storm or write to "
    "storm.desk@example.org for details.",
    "Shopping:\n- bread\n- 2 kg of flour\n- milk",
    "She had never seen the sea before. It lay there under the morning haze, grey and patient, and the gulls "
    "turned above it as if they had been turning since the world began. Nobody spoke for a long while; then "
    "the boy laughed, and the spell broke, and they ran down the shingle to the water's edge.",
]


def english(size: int) -> str:
    """About ``size`` characters of varied English prose, chapters numbered so no two are alike."""
    parts: list[str] = []
    total = 0
    n = 0
    while total < size:
        n += 1
        for paragraph in _PARAGRAPHS:
            part = paragraph.format(n=n)
            parts.append(part)
            total += len(part) + 2
    return "\n\n".join(parts)[:size]


def _best(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def run(size: int = 1_000_000, repeat: int = 5) -> list[Row]:
    text = english(size)
    mb = len(text.encode("utf-8")) / 1e6
    ours = mb / _best(lambda: chunk_text(text, 1200, min_chars=100), repeat)
    plain = mb / _best(lambda: chunk_text(text, 1200, min_chars=100, normalize=False), repeat)
    segmenter = pysbd.Segmenter(language="en", clean=False)
    paragraphs = text.split("\n\n")
    baseline = mb / _best(lambda: [segmenter.segment(p) for p in paragraphs], 1)
    return [
        (f"chunk {mb:.1f} MB English, normalised (target >= 1)", ours, "MB/s", baseline, ours / baseline),
        (f"chunk {mb:.1f} MB English, normalize=False", plain, "MB/s", baseline, plain / baseline),
        (f"pysbd segment {mb:.1f} MB English, by paragraph", baseline, "MB/s", None, None),
    ]


def main() -> None:
    for name, value, unit, baseline, ratio in run():
        base = f"{baseline:.3f}" if baseline is not None else "-"
        times = f"{ratio:.1f}x" if ratio is not None else "-"
        print(f"{name:<48} {value:>8.3f} {unit:<5} baseline {base:>7}  ratio {times}")


if __name__ == "__main__":
    main()
