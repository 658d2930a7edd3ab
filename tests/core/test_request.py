"""JobRequest schema and admission: every bad input names its field, before anything is queued."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from narrator.errors import InvalidRequest
from narrator.job.admission import admit
from narrator.models import ModelRegistry
from narrator.request import JobRequest
from narrator.settings import PROJECT_WORKFLOWS, Settings


def wav_b64(seconds: float = 1.0, rate: int = 24000) -> str:
    t = np.arange(int(seconds * rate)) / rate
    buf = io.BytesIO()
    sf.write(buf, 0.3 * np.sin(2 * np.pi * 220 * t), rate, format="WAV", subtype="PCM_16")
    return base64.b64encode(buf.getvalue()).decode()


@pytest.fixture(scope="module")
def registry() -> ModelRegistry:
    return ModelRegistry.from_dir(PROJECT_WORKFLOWS)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(storage_url=tmp_path.as_uri(), max_text_chars=5000)


BAD = [
    ({}, "text"),
    ({"text": ""}, "text"),
    ({"text": "   \n\t "}, "text"),
    ({"text": "a\x00b"}, "text"),
    ({"text": "bad \ud800 surrogate"}, "text"),
    ({"text": 12}, "text"),
    ({"text": "x" * 5001}, "text"),
    ({"text": "hi", "model": "no-such-model"}, "model"),
    ({"text": "hi", "model": "../etc"}, "model"),
    ({"text": "hi", "voice_settings": {"speed": 9}}, "voice_settings.speed"),
    ({"text": "hi", "voice_settings": {"speed": float("nan")}}, "voice_settings.speed"),
    ({"text": "hi", "voice_settings": {"temperature": -1}}, "voice_settings.temperature"),
    ({"text": "hi", "voice_settings": {"seed": -5}}, "voice_settings.seed"),
    ({"text": "hi", "voice_settings": {"steps": 20}}, "voice_settings.steps"),
    ({"text": "hi", "voice_settings": {"cfg_scale": 1.5}}, "voice_settings.cfg_scale"),
    ({"text": "hi", "voice_settings": {"volume": 1}}, "voice_settings.volume"),
    ({"text": "hi", "output": {"format": "aiff"}}, "output.format"),
    ({"text": "hi", "output": {"sample_rate": 100}}, "output.sample_rate"),
    ({"text": "hi", "output": {"url_expires": 10**9}}, "output.url_expires"),
    ({"text": "hi", "surprise": 1}, "surprise"),
    ({"text": "hi", "reference_audio": "%%%not base64%%%"}, "reference_audio"),
    ({"text": "hi", "reference_audio": base64.b64encode(b"this is not audio at all" * 10).decode()}, "reference_audio"),
    ({"text": "hi", "reference_audio_url": "ftp://example.com/v.wav"}, "reference_audio_url"),
    ({"text": "hi", "reference_audio_url": "http://127.0.0.1/v.wav"}, "reference_audio_url"),
    ({"text": "hi", "voice": "no-such-voice"}, "voice"),
    ({"text": "hi", "voice": "a", "reference_audio": "b"}, "request"),
]


@pytest.mark.parametrize(("data", "field"), BAD, ids=[f"{f}-{i}" for i, (_, f) in enumerate(BAD)])
def test_bad_input_names_its_field(data: dict, field: str, settings: Settings, registry: ModelRegistry) -> None:
    with pytest.raises(InvalidRequest) as err:
        admit(data, settings, registry)
    assert str(err.value).startswith(field), str(err.value)


def test_not_an_object(settings: Settings, registry: ModelRegistry) -> None:
    with pytest.raises(InvalidRequest, match="^request: a request is a JSON object"):
        admit(["text"], settings, registry)


def test_good_request_gets_model_defaults(settings: Settings, registry: ModelRegistry) -> None:
    admitted = admit({"text": "Hello.", "voice_settings": {"speed": 1.25}}, settings, registry)
    assert admitted.model.name == "local"
    assert admitted.params == {"speed": 1.25, "temperature": 1.0}


def test_seed_era_fields_are_accepted(settings: Settings, registry: ModelRegistry) -> None:
    admitted = admit(
        {"text": "Hello.", "reference_audio": wav_b64(), "voice_settings": {"temperature": 0.8, "speed": 1.0}},
        settings,
        registry,
    )
    voice = admitted.request.voice_input()
    assert voice is not None and voice.kind == "base64" and voice.field == "reference_audio"


@pytest.mark.parametrize(
    ("value", "kind"),
    [("https://example.com/v.wav", "url"), ("narrator-joe", "name"), (wav_b64(0.1), "base64")],
)
def test_voice_kinds(value: str, kind: str) -> None:
    voice = JobRequest.parse({"text": "x", "voice": value}).voice_input()
    assert voice is not None and voice.kind == kind


def test_oversize_base64_rejected_before_decoding(tmp_path: Path, registry: ModelRegistry) -> None:
    small = Settings(storage_url=tmp_path.as_uri(), max_voice_bytes=1000)
    with pytest.raises(InvalidRequest, match="^reference_audio: .*larger than 1000 bytes"):
        admit({"text": "hi", "reference_audio": "A" * 4000}, small, registry)


@pytest.mark.parametrize(
    ("model", "settings_in", "field"),
    [
        ("vibevoice-1.5b", {"cfg_scale": 60.0}, "voice_settings.cfg_scale"),
        ("vibevoice-large", {"temperature": 2.5}, "voice_settings.temperature"),
        ("vibevoice-1.5b", {"speed": 1.5}, "voice_settings.speed"),
    ],
)
def test_comfy_models_check_values_against_the_node(
    model: str, settings_in: dict, field: str, settings: Settings, registry: ModelRegistry
) -> None:
    with pytest.raises(InvalidRequest) as err:
        admit({"text": "Hello there, friend.", "model": model, "voice_settings": settings_in}, settings, registry)
    assert str(err.value).startswith(field), str(err.value)


def test_comfy_model_params_within_the_node_ranges(settings: Settings, registry: ModelRegistry) -> None:
    admitted = admit(
        {"text": "Hello there.", "model": "vibevoice-1.5b", "voice_settings": {"temperature": 1.1, "steps": 30}},
        settings,
        registry,
    )
    assert admitted.params["temperature"] == 1.1 and admitted.params["steps"] == 30
