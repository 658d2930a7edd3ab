"""A two-speaker script through GPU workers: each speaker's own voice reaches ComfyUI, turns stay whole."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from narrator import jobs
from narrator.settings import Settings
from tests.support.procs import WorkerPool

pytestmark = pytest.mark.integration


def voice(freq: float) -> str:
    rate = 24000
    t = np.arange(rate * 2) / rate
    buf = io.BytesIO()
    sf.write(buf, 0.4 * np.sin(2 * np.pi * freq * t) * (1 + 0.3 * np.sin(2 * np.pi * 3 * t)), rate, format="WAV")
    return base64.b64encode(buf.getvalue()).decode()


SCRIPT = """Alice: Did you hear the storm last night? The wind took half the fence down by the river.
Bob: I heard it. I went out at midnight with a lantern to see if the boat was still tied.
Alice: And was it? Tell me it was, because I do not want to swim across for the post again.
Bob: It was there, full of rain, but there. We can bail it out together after breakfast."""


def pitch(path: Path) -> float:
    """The strongest frequency of a voice file (Hz)."""
    samples, rate = sf.read(str(path), dtype="float32")
    spectrum = np.abs(np.fft.rfft(samples))
    return float(np.argmax(spectrum) * rate / len(samples))


def test_two_speakers_two_voices(
    broker_settings: Settings, worker_pool: WorkerPool, fake_comfy_processes: Any, tmp_path: Path
) -> None:
    (fake,) = fake_comfy_processes(1)
    worker_pool.start(broker_settings.with_(comfy_url=fake.url), queues="narrator.gpu", name="gpu")
    worker_pool.start(broker_settings, queues="narrator.cpu", name="cpu")
    request = {
        "text": SCRIPT,
        "model": "vibevoice-large",
        "speakers": {"Alice": 1, "Bob": 2},
        "voices": {"1": voice(180), "2": voice(120)},
    }
    result = jobs.submit(request, broker_settings).wait(timeout=120)
    assert result.chunks == 4
    assert [(r.speaker, r.source, r.used) for r in result.references] == [(1, "base64", True), (2, "base64", True)]
    assert result.reference_used.startswith("Using base64 reference (ref_b64_")

    prompts = fake.stats()["prompts"]
    tts = [next(n for n in p.values() if n["class_type"] == "VibeVoiceTTS") for p in prompts]
    loaders = [{n["_meta"]["title"]: n["inputs"]["audio"] for n in p.values() if n["class_type"] == "LoadAudio"}
               for p in prompts]
    # Each turn is one chunk, in script order, written in the model's speaker format with its one
    # speaker as voice slot 1 (narrator.chunker.slots: the node renumbers any other set of ids).
    assert [t["inputs"]["text"].split(":")[0] for t in tts] == ["Speaker 1"] * 4
    assert "fence" in tts[0]["inputs"]["text"] and "bail" in tts[3]["inputs"]["text"]
    # Slot 1 carries the speaker of the chunk: one uploaded voice for Alice's turns, another for Bob's.
    slot_one = [lo["Speaker 1 voice"] for lo in loaders]
    assert slot_one[0] == slot_one[2] and slot_one[1] == slot_one[3] and slot_one[0] != slot_one[1]
    assert all(name.startswith("narrator/") and name.endswith(".wav") for name in slot_one)
    # ... and it is that speaker's own voice, as uploaded: Alice's at 180 Hz, Bob's at 120 Hz.
    uploaded = [next(tmp_path.glob(f"comfyui-*/input/{name}")) for name in slot_one[:2]]
    assert [round(pitch(path)) for path in uploaded] == [180, 120]
