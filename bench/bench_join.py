"""Joining one hour of 24 kHz mono speech-like audio from 600 FLAC chunks.

Each measurement runs in its own subprocess so that its peak RSS is its own:
  plain  a plain streaming copy of the samples to WAV (the speed baseline)
  full   narrator's join: trim, pauses, fades, loudness to -16 LUFS, true-peak limiter
  fast   narrator's join without loudness and limiter (trim, pauses, fades)
  pydub  pydub's in-memory concatenation (chunks decoded with soundfile: no ffmpeg here)

Targets: full <= 3x plain, fast <= 3 s, both <= 100 MB peak RSS.
Run: python -m bench.bench_join
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RATE = 24000
CHUNKS = 600
TOTAL_SECONDS = 3600.0
DATA_VERSION = "v1"
REPEATS = 2  # best of: the machine is shared

Row = tuple[str, float, str, float | None, float | None]


def data_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"narrator-bench-join-{DATA_VERSION}"


def chunk_paths(folder: Path) -> list[Path]:
    return [folder / f"{i:05d}.flac" for i in range(CHUNKS)]


def ensure_chunks() -> Path:
    """600 FLAC chunks totalling one hour, made once and cached in the temp dir."""
    import soundfile as sf

    folder = data_dir()
    done = folder / "complete"
    if done.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2024)
    lengths = rng.uniform(3.0, 9.0, CHUNKS)
    lengths *= TOTAL_SECONDS / lengths.sum()
    for path, seconds in zip(chunk_paths(folder), lengths, strict=True):
        sf.write(path, _speechlike(rng, float(seconds)), RATE, subtype="PCM_16")
    done.write_text("ok")
    return folder


def _speechlike(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """Noise-modulated harmonics in syllable bursts, between silences, at a random level."""
    lead, tail = rng.uniform(0.1, 0.4, 2)
    n = round((seconds - lead - tail) * RATE)
    t = np.arange(n, dtype=np.float32) / RATE
    f0 = rng.uniform(90, 220)
    phase = 2 * np.pi * f0 * t + 3 * np.sin(2 * np.pi * 0.5 * t)
    voiced = np.sin(phase) + 0.5 * np.sin(2 * phase) + 0.25 * np.sin(3 * phase)
    noise = rng.standard_normal(n).astype(np.float32) * 0.3
    envelope = np.clip(np.sin(2 * np.pi * rng.uniform(3, 5) * t), 0.05, None)
    x = (voiced + noise) * envelope
    x *= 10 ** (rng.uniform(-30, -1) / 20) / np.max(np.abs(x))
    total = round(seconds * RATE)
    out = np.zeros(total, dtype=np.float32)
    start = round(lead * RATE)
    out[start : start + n] = x[: total - start]
    return out


def _child(mode: str, folder: Path, out: Path) -> dict[str, float]:
    paths = chunk_paths(folder)
    started, cpu = time.perf_counter(), time.process_time()
    if mode == "pydub":
        _pydub_join(paths, out)
    else:
        from narrator.audio import ChunkIn, JoinOptions, join, plain_copy

        if mode == "plain":
            plain_copy(paths, out)
        else:
            kinds = ["paragraph" if i % 8 == 7 else "sentence" for i in range(len(paths))]
            kinds[-1] = "end"
            if mode == "full":
                options = JoinOptions()
            else:
                options = JoinOptions(target_lufs=None, ceiling_dbtp=None)
            join([ChunkIn(p, k) for p, k in zip(paths, kinds, strict=True)], out, options)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"seconds": seconds, "cpu": cpu, "rss_mb": _peak_rss_mb()}


def _peak_rss_mb() -> float:
    """This process's own peak RSS. ``ru_maxrss`` survives fork and exec on Linux, so a
    child of a big parent (``python -m bench`` after the speak benchmark) would report the
    parent's peak; the address space's high-water mark starts afresh at exec."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _pydub_join(paths: list[Path], out: Path) -> None:
    import warnings

    import soundfile as sf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Couldn't find ffmpeg": not needed for raw PCM and WAV export
        from pydub import AudioSegment

    combined = AudioSegment.empty()
    pause = AudioSegment.silent(350, frame_rate=RATE)
    for path in paths:
        pcm, rate = sf.read(path, dtype="int16")
        combined += AudioSegment(data=pcm.tobytes(), sample_width=2, frame_rate=rate, channels=1)
        combined += pause
    combined.export(str(out), format="wav")


def measure(mode: str, folder: Path, repeats: int = 1) -> dict[str, float]:
    """Best wall time, best CPU time and the largest peak RSS over ``repeats`` fresh subprocesses."""
    runs = []
    root = Path(__file__).resolve().parent.parent
    for _ in range(repeats):
        out = folder / f"out-{mode}.wav"
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "bench.bench_join", "--child", mode, str(folder), str(out)],
                cwd=root,
                capture_output=True,
                text=True,
                timeout=300,
                check=True,
            )
        finally:
            out.unlink(missing_ok=True)
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return {
        "seconds": min(r["seconds"] for r in runs),
        "cpu": min(r["cpu"] for r in runs),
        "rss_mb": max(r["rss_mb"] for r in runs),
    }


def run() -> list[Row]:
    folder = ensure_chunks()
    plain = measure("plain", folder, REPEATS)
    full = measure("full", folder, REPEATS)
    fast = measure("fast", folder, REPEATS)
    pydub = measure("pydub", folder)
    name = "join 1 h/600 chunks"
    return [
        (f"{name}: plain streaming copy", plain["seconds"], "s", None, None),
        (f"{name}: plain streaming copy CPU", plain["cpu"], "s", None, None),
        (f"{name}: plain streaming copy peak RSS", plain["rss_mb"], "MB", None, None),
        (f"{name}: trim+loudness+limiter vs plain copy", full["seconds"], "s", plain["seconds"],
         full["seconds"] / plain["seconds"]),
        (f"{name}: trim+loudness+limiter CPU vs plain copy", full["cpu"], "s", plain["cpu"],
         full["cpu"] / plain["cpu"]),
        (f"{name}: trim+loudness+limiter vs pydub", full["seconds"], "s", pydub["seconds"],
         full["seconds"] / pydub["seconds"]),
        (f"{name}: trim+loudness+limiter peak RSS vs pydub", full["rss_mb"], "MB", pydub["rss_mb"],
         full["rss_mb"] / pydub["rss_mb"]),
        (f"{name}: trim only vs pydub", fast["seconds"], "s", pydub["seconds"], fast["seconds"] / pydub["seconds"]),
        (f"{name}: trim only CPU", fast["cpu"], "s", None, None),
        (f"{name}: trim only peak RSS vs pydub", fast["rss_mb"], "MB", pydub["rss_mb"],
         fast["rss_mb"] / pydub["rss_mb"]),
        (f"{name}: pydub in-memory concatenation", pydub["seconds"], "s", None, None),
        (f"{name}: pydub in-memory concatenation peak RSS", pydub["rss_mb"], "MB", None, None),
    ]  # fmt: skip


def _print(rows: list[Row]) -> None:
    for name, value, unit, baseline, ratio in rows:
        extra = ""
        if baseline is not None and ratio is not None:
            extra = f"  baseline {baseline:.2f} {unit}  ratio {ratio:.2f}x"
        print(f"{name:62s} {value:9.2f} {unit}{extra}")


def main(argv: list[str]) -> None:
    if argv[:1] == ["--child"]:
        mode, folder, out = argv[1], Path(argv[2]), Path(argv[3])
        print(json.dumps(_child(mode, folder, out)))
        return
    _print(run())


if __name__ == "__main__":
    main(sys.argv[1:])
