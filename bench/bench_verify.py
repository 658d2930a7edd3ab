"""The speech check on a corpus of the embedded voice: good chunks, and the same chunks broken.

24 sentences, good at speeds 0.8, 1.0 and 1.25 (72 chunks), and each broken six ways at
speed 1.0 (silence, first half only, another sentence's audio, white noise, the chunk
twice, twice the speed: 144 chunks), checked as the pipeline checks them (narrator.verify).

Figures per recogniser: the share of broken chunks failed (target >= 95%), of good chunks
failed (target <= 2%), each breakage's share, and the check's cost as a fraction of the
audio's length (target < 0.3 for pocketsphinx). Baseline: a word error rate threshold
alone, the best one that fails at most 2% of the good chunks, on the same transcripts.
Whisper is measured when NARRATOR_VERIFY_WHISPER_MODEL names a model folder.

Run: python -m bench.bench_verify
"""

from __future__ import annotations

import os
import sys
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import soxr

from narrator.verify import Limits, Recogniser, check_audio
from narrator.verify.compare import compare
from narrator.verify.recogniser import RATE
from narrator.verify.words import words
from tests.support.speech_corpus import BREAKS, Sample, corpus, local_model

Row = tuple[str, float | None, str, float | None, float | None]
SPEEDS = (1.0, 0.8, 1.25)


@dataclass
class Outcome:
    kind: str
    passed: bool
    wer: float
    cost: float
    seconds: float


def recognisers() -> dict[str, Recogniser]:
    from narrator.verify.sphinx import SphinxRecogniser

    found: dict[str, Recogniser] = {"pocketsphinx": SphinxRecogniser()}
    model = os.environ.get("NARRATOR_VERIFY_WHISPER_MODEL", "")
    if model:
        from pathlib import Path

        from narrator.verify.whisper import WhisperRecogniser

        found["whisper"] = WhisperRecogniser(Path(model))
    return found


def measure(samples: list[Sample], recogniser: Recogniser) -> list[Outcome]:
    spec = local_model()
    out = []
    for s in samples:
        limits = Limits(seconds_per_word=60 / spec.words_per_minute, speed=s.speed)
        check = check_audio(s.samples, s.rate, s.text, limits, recogniser)
        # The baseline's figure: WER of a plain transcript (not timed: the check above is).
        audio = soxr.resample(s.samples, s.rate, RATE).astype(np.float32)
        heard = [w.text.lower() for w in recogniser.transcribe(audio, "en").words] if audio.any() else []
        wer = compare(words(s.text), heard).wer
        out.append(Outcome(s.kind, check.passed, wer, check.cost, len(s.samples) / s.rate))
    return out


def wer_only(outcomes: list[Outcome]) -> tuple[float, float]:
    """(broken caught, good failed) by the best WER threshold failing at most 2% of good chunks."""
    good = sorted(o.wer for o in outcomes if o.kind == "good")
    broken = [o.wer for o in outcomes if o.kind != "good"]
    allowed = int(0.02 * len(good))
    threshold = good[len(good) - 1 - allowed]  # fail above this
    caught = sum(w > threshold for w in broken) / len(broken)
    return caught, sum(w > threshold for w in good) / len(good)


def rows_for(name: str, outcomes: list[Outcome]) -> list[Row]:
    by: defaultdict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        by[o.kind].append(o)
    good = by["good"]
    broken = [o for o in outcomes if o.kind != "good"]
    caught = 100 * sum(not o.passed for o in broken) / len(broken)
    wrongly = 100 * sum(not o.passed for o in good) / len(good)
    base_caught, base_wrongly = wer_only(outcomes)
    cost = sum(o.cost for o in good) / sum(o.seconds for o in good)
    rows: list[Row] = [
        (f"{name}: broken chunks failed (target >= 95)", caught, "%", 100 * base_caught,
         caught / (100 * base_caught) if base_caught else None),
        (f"{name}: good chunks failed (target <= 2)", wrongly, "%", 100 * base_wrongly, None),
    ]
    for kind in BREAKS:
        share = 100 * sum(not o.passed for o in by[kind]) / len(by[kind])
        rows.append((f"{name}:   {kind} failed", share, "%", None, None))
    rows.append((f"{name}: check cost / audio length (target < 0.3)", cost, "x", None, None))
    return rows


def run() -> list[Row]:
    samples = list(corpus(speeds=SPEEDS))
    rows: list[Row] = []
    for name, recogniser in recognisers().items():
        outcomes = measure(samples, recogniser)
        rows += rows_for(name, outcomes)
        for kind in ["good", *BREAKS]:
            wers = [o.wer for o in outcomes if o.kind == kind]
            print(f"# {name} WER, {kind}: {min(wers):.2f} to {max(wers):.2f}", file=sys.stderr)
    if "whisper" not in {r[0].split(":")[0] for r in rows}:
        rows.append(("whisper: not measured (no NARRATOR_VERIFY_WHISPER_MODEL)", None, "", None, None))
    return rows


def main() -> None:
    from bench.__main__ import format_row

    for row in run():
        print(format_row(row))


if __name__ == "__main__":
    main()
