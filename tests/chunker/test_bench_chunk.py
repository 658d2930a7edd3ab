"""The chunking benchmark runs and reports its rows (a small text, so it stays quick)."""

from __future__ import annotations

from bench.bench_chunk import english, run


def test_bench_rows() -> None:
    rows = run(size=20_000, repeat=1)
    assert [unit for _, _, unit, _, _ in rows] == ["MB/s"] * 3
    ours, plain, pysbd = rows
    assert ours[1] > 0 and ours[3] == pysbd[1] and ours[4] == ours[1] / pysbd[1]
    assert plain[3] == pysbd[1] and pysbd[3] is None and pysbd[4] is None


def test_bench_text_is_varied_english() -> None:
    text = english(50_000)
    assert len(text) == 50_000
    assert "CHAPTER 1." in text and "CHAPTER 2." in text and "Dr. Watson" in text
