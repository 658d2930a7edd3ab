"""JobRequest schema and admission: every bad input names its field, before anything is queued."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from narrator.engines import engine_class, resolve_params
from narrator.errors import InvalidRequest, ModelError
from narrator.job.admission import admit
from narrator.models import ModelRegistry
from narrator.request import JobRequest, VoiceSettings
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


#: Which bound rules, per shipped model and setting: the contract (VoiceSettings, the JSON schema)
#: or the model's engine (for ComfyUI the node's range in the pinned object_info). A value
#: passes only inside both; the refusal comes from whichever is stricter.
#: (model, setting, value, refused by: None = accepted, "contract", "model")
RULES = [
    ("vibevoice-1.5b", "cfg_scale", 10.0, None),
    ("vibevoice-1.5b", "cfg_scale", 10.5, "contract"),  # the node takes up to 50
    ("vibevoice-1.5b", "cfg_scale", 1.0, None),
    ("vibevoice-1.5b", "cfg_scale", 0.5, "contract"),  # the node takes down to 0.1
    ("vibevoice-large", "steps", 100, None),
    ("vibevoice-large", "steps", 101, "contract"),  # the node takes up to 500
    ("vibevoice-large", "seed", 2**32 - 1, None),
    ("vibevoice-large", "seed", 2**32, "contract"),  # the node takes up to 2**64 - 1
    ("vibevoice-large", "temperature", 2.0, None),
    ("vibevoice-large", "temperature", 2.5, "contract"),  # the node's max is 2.0 too
    ("vibevoice-large", "temperature", 0.0, "contract"),  # the node takes 0.0
    ("vibevoice-1.5b", "top_p", 1.0, None),
    ("vibevoice-1.5b", "top_p", 1.5, "contract"),
    ("vibevoice-1.5b", "speed", 1.5, "model"),  # VibeVoice has no speed
    ("local", "speed", 2.0, None),
    ("local", "speed", 2.5, "contract"),
    ("local", "cfg_scale", 1.5, "model"),  # Piper has no cfg_scale
]


@pytest.mark.parametrize(("model", "name", "value", "refused_by"), RULES)
def test_which_bound_rules(
    model: str, name: str, value: float, refused_by: str | None, settings: Settings, registry: ModelRegistry
) -> None:
    request = {"text": "Hello there, friend.", "model": model, "voice_settings": {name: value}}
    if refused_by is None:
        assert admit(request, settings, registry).params[name] == value
        return
    with pytest.raises(InvalidRequest) as err:
        admit(request, settings, registry)
    message = str(err.value)
    assert message.startswith(f"voice_settings.{name}: "), message
    contract = message.startswith(f"voice_settings.{name}: Input should be")
    assert contract == (refused_by == "contract"), message


@pytest.mark.parametrize("model", ["vibevoice-1.5b", "vibevoice-large", "local"])
def test_the_whole_contract_is_usable_on_each_shipped_model(model: str, registry: ModelRegistry) -> None:
    """The schema promises no value a shipped model refuses: the contract's ends pass the engine's check."""
    spec = registry.get(model)
    assert spec is not None
    for name in spec.supported_parameters:
        lo, hi = contract_range(name)
        for value in (lo, hi):
            VoiceSettings.model_validate({name: value})  # inside the contract
            engine_class(spec).check_params(spec, {name: value})


def contract_range(name: str) -> tuple[float, float]:
    """The lowest and highest values VoiceSettings takes for ``name``."""
    lo = hi = None
    for rule in VoiceSettings.model_fields[name].metadata:
        lo = getattr(rule, "ge", None) if getattr(rule, "ge", None) is not None else lo
        lo = getattr(rule, "gt", None) + 1e-6 if getattr(rule, "gt", None) is not None else lo
        hi = getattr(rule, "le", None) if getattr(rule, "le", None) is not None else hi
    assert lo is not None and hi is not None, name
    return lo, hi


def test_the_engine_alone_refuses_what_its_node_refuses(registry: ModelRegistry) -> None:
    """Past the schema (a value no request can carry) the node's range still holds, naming the node."""
    spec = registry.get("vibevoice-1.5b")
    assert spec is not None
    with pytest.raises(InvalidRequest, match=r"^voice_settings.cfg_scale: .*max of 50.*VibeVoiceTTS.cfg_scale"):
        resolve_params(spec, {"cfg_scale": 60.0})
    local = registry.get("local")
    assert local is not None
    with pytest.raises(InvalidRequest, match="^voice_settings.temperature: 0 is not a positive number"):
        resolve_params(local, {"temperature": 0})


@pytest.mark.parametrize("model", ["vibevoice-1.5b", "vibevoice-large", "local"])
def test_params_are_resolved_once_with_the_model_defaults(
    model: str, settings: Settings, registry: ModelRegistry
) -> None:
    spec = registry.get(model)
    assert spec is not None
    defaults = {k: v for k, v in spec.defaults.items() if k in spec.supported_parameters}
    admitted = admit({"text": "Hello there, friend.", "model": model}, settings, registry)
    assert admitted.params == defaults == resolve_params(spec, {})
    # Converted to what the model takes: an int cfg_scale becomes the node's FLOAT.
    given = {"cfg_scale": 2} if "cfg_scale" in defaults else {"speed": 1}
    admitted = admit({"text": "Hello there, friend.", "model": model, "voice_settings": given}, settings, registry)
    [(name, value)] = given.items()
    assert admitted.params == {**defaults, name: float(value)} and isinstance(admitted.params[name], float)


def test_a_default_the_engine_refuses_is_the_model_files_fault(registry: ModelRegistry) -> None:
    spec = registry.get("vibevoice-large")
    assert spec is not None
    broken = spec.model_copy(update={"defaults": {**spec.defaults, "steps": 9999}})
    with pytest.raises(ModelError, match="^model 'vibevoice-large': default steps: voice_settings.steps"):
        resolve_params(broken, {})
    assert resolve_params(broken, {"steps": 20})["steps"] == 20  # the request's value replaces it
