"""Chunks of the embedded voice, good and broken on purpose: the speech check's corpus.

Used by tests/verify/test_corpus.py (a few sentences) and bench/bench_verify.py (many).
Each breakage is what a sampling TTS model does to a chunk now and then.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

from narrator.engines.base import SynthesisInput
from narrator.engines.embedded import EmbeddedEngine
from narrator.models import ModelSpec, load_model_file
from narrator.settings import PROJECT_WORKFLOWS

SENTENCES = (
    "The old man had lived alone in the house at the end of the lane for nearly forty years.",
    "Every morning she walked down to the harbour to watch the fishing boats come in.",
    "Nobody in the village could remember when the bridge had last been repaired.",
    "He opened the letter slowly, afraid of what it might say about his brother.",
    "The rain had not stopped for three days, and the river was rising fast.",
    "They found the key hidden beneath a loose stone in the garden wall.",
    "It was the kind of silence that makes you listen for something you cannot hear.",
    "The teacher asked the children to write a story about their favourite animal.",
    "By the time the train arrived, the platform was crowded with tired travellers.",
    "She laughed at the joke, although she had heard it many times before.",
    "A small dog followed them all the way home from the market.",
    "The lamp on the desk flickered once and then went out completely.",
    "Winter came early that year, and the lake froze before the end of November.",
    "He spent the whole afternoon trying to fix the broken clock in the hall.",
    "The captain ordered the crew to lower the sails before the storm arrived.",
    "There were no lights in the windows of the tall grey building across the street.",
    "Her grandmother kept every letter she had ever received in a wooden box.",
    "The road climbed steeply through the forest toward the top of the hill.",
    "Nobody answered when he knocked, so he pushed the door open and went inside.",
    "The smell of fresh bread drifted out of the bakery and into the cold street.",
    "Yes, I will come tomorrow.",
    "Thank you very much for the lovely flowers and the kind card you sent last week.",
    "The committee will meet again on Thursday to discuss the new proposal in detail.",
    "Far away, a church bell rang twelve times, and then the night was still again.",
)

Break = Callable[[np.ndarray, int, np.ndarray, np.random.Generator], np.ndarray]


def _silence(x: np.ndarray, rate: int, other: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.zeros_like(x)


def _first_half(x: np.ndarray, rate: int, other: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return x[: len(x) // 2].copy()


def _other_sentence(x: np.ndarray, rate: int, other: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return other.copy()


def _noise(x: np.ndarray, rate: int, other: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return (rng.standard_normal(len(x)) * 0.1).astype(np.float32)


def _twice(x: np.ndarray, rate: int, other: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.concatenate([x, np.zeros(int(0.3 * rate), np.float32), x])


def _double_speed(x: np.ndarray, rate: int, other: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return soxr.resample(x, rate * 2, rate).astype(np.float32)  # played at twice the speed


BREAKS: dict[str, Break] = {
    "silence": _silence, "first half": _first_half, "another sentence": _other_sentence,
    "white noise": _noise, "twice": _twice, "speed x2": _double_speed,
}


@dataclass(frozen=True)
class Sample:
    kind: str
    """``good`` or a key of :data:`BREAKS`."""
    text: str
    samples: np.ndarray
    rate: int
    speed: float = 1.0


def local_model() -> ModelSpec:
    return load_model_file(PROJECT_WORKFLOWS / "local.toml")


def speak(engine: EmbeddedEngine, text: str, speed: float = 1.0, index: int = 0) -> np.ndarray:
    item = SynthesisInput(text=text, index=index, params={"speed": speed, "temperature": 1.0})
    return engine.synthesize(item).samples.astype(np.float32)


def corpus(sentences: tuple[str, ...] = SENTENCES, speeds: tuple[float, ...] = (1.0,), seed: int = 1,
           engine: EmbeddedEngine | None = None) -> Iterator[Sample]:
    """Every sentence, good at each speed, then broken each way (at the first speed)."""
    engine = engine or EmbeddedEngine(local_model())
    rate = engine.sample_rate
    rng = np.random.default_rng(seed)
    good = [speak(engine, s, speeds[0], i) for i, s in enumerate(sentences)]
    for i, text in enumerate(sentences):
        yield Sample("good", text, good[i], rate, speeds[0])
        for speed in speeds[1:]:
            yield Sample("good", text, speak(engine, text, speed, i), rate, speed)
        other = good[(i + len(sentences) // 2) % len(sentences)]
        for kind, broken in BREAKS.items():
            yield Sample(kind, text, broken(good[i], rate, other, rng), rate, speeds[0])


def here() -> Path:
    return Path(__file__).resolve().parent
