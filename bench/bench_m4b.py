"""Muxing 10 hours of 24 kHz mono audio into an M4B with 40 chapters, streaming.

The audio comes as the joiner gives it: ~5,000 blocks of 7 s (tone plus noise, made per
block and dropped after it is written), into :class:`narrator.audio.m4b.M4bSink`; the
40 chapter marks are set after the last block, as the joiner does. The file is read
back (chapter count, duration) so a fast but wrong run cannot pass.

Each measurement runs in its own subprocess so that its peak RSS is its own; the
baseline is an idle interpreter that imported the same modules (numpy, PyAV, narrator's
audio package). Target: peak RSS under 200 MB.
Run: python -m bench.bench_m4b [hours]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RATE = 24000
HOURS = 10.0
BLOCK_SECONDS = 7.0
CHAPTERS = 40
TARGET_RSS_MB = 200.0

Row = tuple[str, float | None, str, float | None, float | None]


def _child(mode: str, hours: float, out: Path) -> dict[str, float]:
    from narrator.audio.book_meta import BookTags, ChapterMark
    from narrator.audio.encode import open_sink
    from narrator.audio.m4b import M4bSink, read_chapters

    if mode == "idle":
        return {"rss_mb": _peak_rss_mb()}
    total = round(hours * 3600 * RATE)
    block = round(BLOCK_SECONDS * RATE)
    rng = np.random.default_rng(17)
    t = np.arange(block, dtype=np.float32) / RATE
    started = time.perf_counter()
    sink = open_sink(out, "m4b", RATE, tags=BookTags(title="Benchmark", author="narrator", language="en"))
    assert isinstance(sink, M4bSink)
    written = blocks = 0
    while written < total:
        n = min(block, total - written)
        pitch = 110.0 + 20.0 * (blocks % 7)
        x = 0.2 * np.sin(2 * np.pi * pitch * t[:n]) + 0.02 * rng.standard_normal(n, dtype=np.float32)
        sink.write(x.astype(np.float32, copy=False))
        written += n
        blocks += 1
    closing = time.perf_counter()
    bounds = [round(k * total / CHAPTERS) / RATE for k in range(CHAPTERS + 1)]
    sink.set_chapters([ChapterMark(f"Chapter {k + 1}", bounds[k], bounds[k + 1]) for k in range(CHAPTERS)])
    sink.close()
    finished = time.perf_counter()
    marks = read_chapters(out)
    if len(marks) != CHAPTERS or abs(marks[-1].end - total / RATE) > 0.05:
        raise SystemExit(f"read back {len(marks)} chapters ending at {marks[-1].end if marks else None} s")
    return {
        "seconds": finished - started,
        "close": finished - closing,
        "audio": total / RATE,
        "blocks": blocks,
        "mb": out.stat().st_size / 1e6,
        "rss_mb": _peak_rss_mb(),
    }


def _peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM starts afresh at exec; ru_maxrss would carry the parent's)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(mode: str, hours: float) -> dict[str, float]:
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory(prefix="narrator-bench-m4b-") as tmp:
        proc = subprocess.run(
            [sys.executable, "-m", "bench.bench_m4b", "--child", mode, str(hours), str(Path(tmp) / "book.m4b")],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=3600,
            check=False,
        )
    if proc.returncode:
        raise RuntimeError(f"bench_m4b {mode} failed: {proc.stderr.strip()[-2000:]}")
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def run(hours: float | None = None) -> list[Row]:
    hours = hours or float(os.environ.get("NARRATOR_BENCH_M4B_HOURS", HOURS))
    idle = measure("idle", hours)
    book = measure("book", hours)
    name = f"m4b {hours:g} h, {CHAPTERS} ch"
    print(f"# {name}: {int(book['blocks'])} blocks of {BLOCK_SECONDS:g} s at {RATE} Hz", file=sys.stderr)
    return [
        (f"{name}: encode + chapters", book["seconds"], "s", None, None),
        (f"{name}: speed", book["audio"] / book["seconds"], "x real", None, None),
        (f"{name}: of it, close (copy+chapters)", book["close"], "s", None, None),
        (f"{name}: peak RSS (<{TARGET_RSS_MB:g}) vs idle+av", book["rss_mb"], "MB", idle["rss_mb"],
         book["rss_mb"] / idle["rss_mb"]),
        (f"{name}: file size (64 kb/s AAC)", book["mb"], "MB", None, None),
    ]  # fmt: skip


def main(argv: list[str]) -> None:
    if argv[:1] == ["--child"]:
        print(json.dumps(_child(argv[1], float(argv[2]), Path(argv[3]))))
        return
    from bench.__main__ import format_row

    for row in run(float(argv[0]) if argv else None):
        print(format_row(row))


if __name__ == "__main__":
    main(sys.argv[1:])
