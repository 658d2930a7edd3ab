"""One admission per job and process: the producer's result is what stage-input stages from.

Counted from outside: the test wraps the real module functions (chunking, base64
decoding, admission in the task) with counters, then runs whole jobs.
"""

from __future__ import annotations

import base64
import io
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

import narrator
from narrator.audio import voice as voice_module
from narrator.job import admission, stage
from narrator.settings import Settings
from narrator.storage import open_store
from narrator.tasks import configure, pipeline

TEXT = "The first sentence is short. The second one is a little longer, and it ends the job."


def wav_b64(seconds: float = 1.0, rate: int = 22050) -> str:
    t = np.arange(int(seconds * rate)) / rate
    buf = io.BytesIO()
    sf.write(buf, 0.3 * np.sin(2 * np.pi * 220 * t), rate, format="WAV", subtype="PCM_16")
    return base64.b64encode(buf.getvalue()).decode()


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How often the text is chunked, a base64 voice decoded, and a request admitted by the task."""
    counts: Counter[str] = Counter()

    def counting(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            counts[name] += 1
            return real(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(admission, "chunk_text", counting("chunk_text", admission.chunk_text))
    decode = counting("decode_base64", admission.decode_base64)
    monkeypatch.setattr(admission, "decode_base64", decode)
    monkeypatch.setattr(stage, "decode_base64", decode)
    monkeypatch.setattr(pipeline, "admit", counting("task admit", pipeline.admit))
    # The audio decoder every voice check and normalisation goes through.
    monkeypatch.setattr(voice_module, "decode", counting("decode audio", voice_module.decode))
    return counts


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(storage_url=(tmp_path / "store").as_uri(), default_model="local")


def test_an_in_process_job_is_admitted_once(calls: Counter[str], settings: Settings) -> None:
    assert settings.eager
    request = {"text": TEXT, "reference_audio": wav_b64(), "voice_settings": {"speed": 1.1}}
    result = narrator.submit(request, settings).wait(timeout=120)
    assert result.success and result.chunks >= 1
    # submit() chunked the text and decoded the voice; stage-input took that admission.
    assert calls == Counter({"chunk_text": 1, "decode_base64": 1, "decode audio": 1})
    manifest = json.loads(open_store(settings).get_bytes(f"jobs/{result.job_id}/manifest.json"))
    assert manifest["params"] == {"speed": 1.1, "temperature": 1.0}
    assert admission.take_handed(result.job_id) is None  # taken, not left behind


def test_a_request_from_elsewhere_is_admitted_once_by_stage_input(calls: Counter[str], settings: Settings) -> None:
    """A producer in another process or language sends JSON: stage-input admits it, once."""
    configure(settings)
    request = {"text": TEXT, "reference_audio": wav_b64(), "model": "local"}
    out = pipeline.stage_input("0123456789abcdef0123456789abcdef", request)
    assert out["chunks"] >= 1
    assert calls == Counter({"task admit": 1, "chunk_text": 1, "decode_base64": 1, "decode audio": 1})


def test_a_handover_is_taken_once_and_bounded(settings: Settings) -> None:
    from narrator.models import ModelRegistry

    admitted = admission.admit({"text": TEXT}, settings, ModelRegistry.from_dir(settings.workflows_dir))
    admission.hand_over("job-a", admitted)
    assert admission.take_handed("job-a") is admitted
    assert admission.take_handed("job-a") is None
    # Handovers nobody takes (their job died before staging) do not pile up.
    for n in range(admission._HANDED_MAX + 5):
        admission.hand_over(f"lost-{n}", admitted)
    assert admission.take_handed("lost-0") is None
    assert admission.take_handed(f"lost-{admission._HANDED_MAX + 4}") is admitted
    for n in range(admission._HANDED_MAX + 5):
        admission.take_handed(f"lost-{n}")


def test_the_admission_carries_the_decoded_voice(settings: Settings) -> None:
    from narrator.models import ModelRegistry

    voice = wav_b64(0.5)
    admitted = admission.admit(
        {"text": TEXT, "reference_audio": voice}, settings, ModelRegistry.from_dir(settings.workflows_dir)
    )
    decoded = sf.read(io.BytesIO(base64.b64decode(voice)), dtype="float32")[0]
    assert list(admitted.voices) == [1] and np.array_equal(admitted.voices[1].samples, decoded)
