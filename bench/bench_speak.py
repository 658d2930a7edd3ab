"""``narrator speak`` on the embedded engine, ~1,000 words: audio seconds per wall second.

Baseline: Piper alone on the same text in this process (the engine with no pipeline
around it). Target: at least 5x real time through ``narrator speak``.

Run: python -m bench.bench_speak
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf

Row = tuple[str, float, str, float | None, float | None]
ROOT = Path(__file__).resolve().parents[1]
TEXT = ROOT / "examples" / "tell-tale-heart.txt"


def piper_alone(text: str) -> float:
    """Audio seconds per second of Piper synthesizing the text sentence by sentence, model loaded."""
    from narrator.engines import SynthesisInput, get_engine
    from narrator.models import ModelRegistry
    from narrator.settings import PROJECT_WORKFLOWS, Settings

    spec = ModelRegistry.from_dir(PROJECT_WORKFLOWS).get("local")
    assert spec is not None
    engine = get_engine(spec, Settings())
    engine.warm_up()
    started = time.perf_counter()
    audio = sum(engine.synthesize(SynthesisInput(text=p)).duration for p in text.split("\n\n") if p.strip())
    return audio / (time.perf_counter() - started)


def speak(out: Path, storage: Path) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NARRATOR_")}
    env["NARRATOR_STORAGE_URL"] = storage.as_uri()
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "narrator.cli", "speak", "--file", str(TEXT), "-o", str(out)],
        env=env, check=True, capture_output=True, cwd=ROOT, timeout=600,
    )
    return time.perf_counter() - started


def run() -> list[Row]:
    text = TEXT.read_text()
    words = len(text.split())
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.wav"
        wall = speak(out, Path(tmp) / "store")
        audio = sf.info(str(out)).duration
    speed = audio / wall
    baseline = piper_alone(text)
    return [
        (f"speak: {words} words, audio", audio, "s", None, None),
        ("speak: wall time (incl. process start, model load)", wall, "s", None, None),
        ("speak: audio s per wall s (target >= 5)", speed, "x", baseline, speed / baseline),
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
