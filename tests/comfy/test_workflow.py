"""Binding parameters to nodes, and validating workflows the way ComfyUI does."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from narrator.comfy.object_info import packaged, validate_prompt
from narrator.comfy.workflow import (
    bind,
    check_model,
    check_params,
    find_node,
    load_workflow,
    prune,
    resolve_bindings,
    validate_workflow,
)
from narrator.errors import InvalidRequest, ModelError
from narrator.models import ModelRegistry, ModelSpec
from tests.support.comfy import ROOT, load_trace

INFO = packaged()

WORKFLOW: dict[str, Any] = {
    "1": {"class_type": "LoadAudio", "inputs": {"audio": "a.wav"}, "_meta": {"title": "Speaker 1 voice"}},
    "2": {"class_type": "LoadAudio", "inputs": {"audio": "b.wav"}, "_meta": {"title": "Speaker 2 voice"}},
    "5": {
        "class_type": "VibeVoiceTTS",
        "inputs": {
            "model_name": "VibeVoice-Large", "text": "Speaker 1: hi", "quantize_llm_4bit": False,
            "attention_mode": "sdpa", "cfg_scale": 1.3, "inference_steps": 10, "seed": 42, "do_sample": True,
            "temperature": 0.95, "top_p": 0.95, "top_k": 0, "force_offload": False,
            "speaker_1_voice": ["1", 0], "speaker_2_voice": ["2", 0],
        },
    },
    "6": {
        "class_type": "SaveAudio",
        "inputs": {"audio": ["5", 0], "filename_prefix": "x/y"},
        "_meta": {"title": "Out"},
    },
}


def spec(bind: dict[str, dict[str, str]], **extra: Any) -> ModelSpec:
    return ModelSpec.model_validate({"name": "m", "engine": "comfyui", "workflow": "m.json", "bind": bind, **extra})


@pytest.mark.parametrize(
    ("ref", "node"),
    [
        ("Speaker 2 voice", "2"),  # by title
        ("VibeVoiceTTS", "5"),  # by unique class_type (it has no title)
        ("Out", "6"),
        ("SaveAudio", "6"),  # a titled node is still found by its unique class_type
    ],
)
def test_find_node(ref: str, node: str) -> None:
    assert find_node(WORKFLOW, ref) == node


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("LoadAudio", "class_type 'LoadAudio' is not unique"),
        ("Speaker 9 voice", "no node is titled 'Speaker 9 voice'"),
    ],
)
def test_find_node_fails(ref: str, message: str) -> None:
    with pytest.raises(LookupError, match=message):
        find_node(WORKFLOW, ref)


def test_title_wins_over_class_type() -> None:
    wf = copy.deepcopy(WORKFLOW)
    wf["7"] = {"class_type": "PreviewAudio", "inputs": {"audio": ["5", 0]}, "_meta": {"title": "SaveAudio"}}
    assert find_node(wf, "SaveAudio") == "7"


BAD_BINDINGS = [
    # binding, words the ModelError must contain
    ({"text": {"node": "TTS", "input": "text"}}, ["model 'm'", "parameter 'text'", "node 'TTS'", "no node is titled"]),
    ({"voice": {"node": "LoadAudio", "input": "audio"}}, ["parameter 'voice'", "not unique", "nodes 1, 2"]),
    ({"seed": {"node": "VibeVoiceTTS", "input": "sead"}}, ["parameter 'seed'", "VibeVoiceTTS", "no input 'sead'"]),
    # an input the class has (per object_info) but the workflow does not set is fine; one it lacks is not
    ({"steps": {"node": "Out", "input": "steps"}}, ["parameter 'steps'", "node 'Out'", "SaveAudio", "no input"]),
]


@pytest.mark.parametrize(("binding", "words"), BAD_BINDINGS)
def test_bad_bindings_name_model_parameter_and_node(binding: dict[str, dict[str, str]], words: list[str]) -> None:
    with pytest.raises(ModelError) as info:
        resolve_bindings(spec(binding), WORKFLOW, INFO)
    for word in words:
        assert word in str(info.value)


def test_an_optional_input_not_in_the_workflow_binds() -> None:
    wf = copy.deepcopy(WORKFLOW)
    del wf["5"]["inputs"]["speaker_2_voice"]
    targets = resolve_bindings(spec({"v": {"node": "VibeVoiceTTS", "input": "speaker_2_voice"}}), wf, INFO)
    assert targets["v"].node_id == "5"
    with pytest.raises(ModelError, match="no input 'speaker_2_voice'"):
        resolve_bindings(spec({"v": {"node": "VibeVoiceTTS", "input": "speaker_2_voice"}}), wf, None)


def test_bind_writes_a_copy() -> None:
    targets = resolve_bindings(
        spec(
            {"text": {"node": "VibeVoiceTTS", "input": "text"}, "voice": {"node": "Speaker 1 voice", "input": "audio"}}
        ),
        WORKFLOW,
        INFO,
    )
    before = copy.deepcopy(WORKFLOW)
    out = bind(WORKFLOW, targets, {"text": "Speaker 1: new", "voice": "narrator/abc.wav"})
    assert out["5"]["inputs"]["text"] == "Speaker 1: new"
    assert out["1"]["inputs"]["audio"] == "narrator/abc.wav"
    assert WORKFLOW == before
    with pytest.raises(InvalidRequest, match="does not take seed"):
        bind(WORKFLOW, targets, {"seed": 1})


@pytest.mark.parametrize(
    ("params", "converted", "error"),
    [
        ({"seed": 7, "cfg_scale": 2}, {"seed": 7, "cfg_scale": 2.0}, None),
        ({"steps": 501}, None, "voice_settings.steps: Value 501 bigger than max of 500"),
        ({"temperature": -1.0}, None, "voice_settings.temperature: Value -1.0 smaller than min of 0.0"),
        ({"seed": "x"}, None, "voice_settings.seed: Failed to convert an input value to a INT value"),
        ({"speed": 1.0}, None, "voice_settings.speed: model 'm' does not take speed"),
    ],
)
def test_check_params(params: dict[str, Any], converted: dict[str, Any] | None, error: str | None) -> None:
    s = spec(
        {
            "seed": {"node": "VibeVoiceTTS", "input": "seed"},
            "cfg_scale": {"node": "VibeVoiceTTS", "input": "cfg_scale"},
            "steps": {"node": "VibeVoiceTTS", "input": "inference_steps"},
            "temperature": {"node": "VibeVoiceTTS", "input": "temperature"},
        }
    )
    targets = resolve_bindings(s, WORKFLOW, INFO)
    if error:
        with pytest.raises(InvalidRequest, match=error):
            check_params(s, targets, params, INFO)
    else:
        assert check_params(s, targets, params, INFO) == converted


def test_prune_drops_an_optional_source_but_not_a_required_one() -> None:
    out = prune(WORKFLOW, ["2"], INFO)
    assert "2" not in out and "speaker_2_voice" not in out["5"]["inputs"]
    assert out["5"]["inputs"]["speaker_1_voice"] == ["1", 0]
    assert validate_workflow(out, INFO) == []
    with pytest.raises(ModelError, match="needs 'audio'"):
        prune(WORKFLOW, ["5"], INFO)


def test_shipped_workflows_validate_against_object_info() -> None:
    registry = ModelRegistry.from_dir(ROOT / "workflows")
    comfy = [s for s in registry if s.engine == "comfyui"]
    assert {s.name for s in comfy} >= {"vibevoice-large", "vibevoice-1.5b"}
    for model in comfy:
        assert check_model(model, INFO) == [], model.name
        path = model.workflow_path()
        assert path is not None
        assert validate_workflow(load_workflow(path), INFO) == []
        assert model.sample_rate == 24000


def test_check_model_reports_broken_files(tmp_path: Path) -> None:
    wf = copy.deepcopy(WORKFLOW)
    wf["5"]["inputs"]["inference_steps"] = 9999
    (tmp_path / "m.json").write_text(json.dumps(wf))
    model = spec(
        {"text": {"node": "VibeVoiceTTS", "input": "text"}, "voice": {"node": "Speaker 1 voice", "input": "audio"}},
        speakers=2,
        voice_cloning=True,
        defaults={"cfg_scale": 1.3, "voice": "voices/none.flac"},
        source=tmp_path / "m.toml",
    )
    problems = "\n".join(check_model(model, INFO))
    assert "node 5 (VibeVoiceTTS, VibeVoiceTTS): Value 9999 bigger than max of 500: inference_steps" in problems
    assert "needs ['voice_2'] bound" in problems
    assert "default cfg_scale: the parameter is not bound" in problems
    assert "no voice file 'voices/none.flac'" in problems


def test_editor_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ui.json"
    path.write_text('{"nodes": [], "links": []}')
    with pytest.raises(ModelError, match="Save \\(API\\)"):
        load_workflow(path)


# -- the validator answers like ComfyUI: the recorded 400 bodies ---------------------------

RECORDED: dict[str, Any] = load_trace("errors_out.json")  # type: ignore[assignment]
TONE = {"class_type": "LoadAudio", "inputs": {"audio": "test_tone.wav"}}

# Prompts as the recording posted them, where the nodes are in object_info.json.
REPLAYS: dict[str, dict[str, Any]] = {
    "unknown_node_type": {"1": {"class_type": "VibeVoiceTTS_DoesNotExist", "inputs": {}}},
    "missing_required_input": {"1": TONE, "2": {"class_type": "SaveAudio", "inputs": {"audio": ["1", 0]}}},
    "missing_required_link": {"1": TONE, "2": {"class_type": "SaveAudio", "inputs": {"filename_prefix": "a/b"}}},
    "bad_value_file_not_in_list": {
        "1": {"class_type": "LoadAudio", "inputs": {"audio": "nope.wav"}},
        "2": {"class_type": "SaveAudio", "inputs": {"audio": ["1", 0], "filename_prefix": "a/b"}},
    },
    "bad_combo_value": {
        "1": TONE,
        "2": {"class_type": "SaveAudioMP3", "inputs": {"audio": ["1", 0], "filename_prefix": "a/b", "quality": "999k"}},
    },
    "link_type_mismatch": {
        "1": {"class_type": "LoadTextFromFileNode", "inputs": {"file": "x.txt"}},
        "2": {"class_type": "SaveAudio", "inputs": {"audio": ["1", 0], "filename_prefix": "a/b"}},
    },
    "no_output_node": {"1": TONE},
    "missing_class_type": {"1": {"inputs": {}}},
}


def _strip(body: Any) -> Any:
    """Tracebacks differ by line number; everything else must match."""
    if isinstance(body, dict):
        return {k: _strip(v) for k, v in body.items() if k != "traceback"}
    if isinstance(body, list):
        return [_strip(v) for v in body]
    return body


@pytest.mark.parametrize("case", sorted(REPLAYS))
def test_validator_matches_recorded_rejections(case: str, tmp_path: Path) -> None:
    from tests.fakes.comfyui import FakeComfy

    fake = FakeComfy(tmp_path)  # not started: only its validators and object_info
    # The recording's server also had the Enemyx pack (LoadTextFromFileNode); the pinned image does not.
    fake.configure(enemyx_models=[])
    result = validate_prompt(REPLAYS[case], fake.info(), fake._validators())
    assert not result.ok
    assert _strip(result.response()) == _strip(RECORDED[case]["body"])


def test_link_to_a_missing_node_is_an_exception_during_validation() -> None:
    result = validate_prompt({"2": {"class_type": "SaveAudio", "inputs": {"audio": ["99", 0], "filename_prefix": "a"}}},
                             INFO)
    expected = RECORDED["link_to_missing_node"]["body"]
    assert result.error == expected["error"]
    got = result.node_errors["2"]["errors"][0]
    want = expected["node_errors"]["2"]["errors"][0]
    assert (got["type"], got["message"], got["details"]) == (want["type"], want["message"], want["details"])


@pytest.mark.parametrize(
    ("inputs", "kind", "message", "details"),
    [
        ({"inference_steps": 501}, "value_bigger_than_max", "Value 501 bigger than max of 500", "inference_steps"),
        ({"cfg_scale": "abc"}, "invalid_input_type", "Failed to convert an input value to a FLOAT value",
         "cfg_scale, abc, could not convert string to float: 'abc'"),
        ({"attention_mode": "fast"}, "value_not_in_list", "Value not in list",
         "attention_mode: 'fast' not in ['eager', 'sdpa', 'flash_attention_2']"),
    ],
)
def test_value_errors_have_comfyui_shapes(inputs: dict[str, Any], kind: str, message: str, details: str) -> None:
    wf = copy.deepcopy(WORKFLOW)
    wf["5"]["inputs"].update(inputs)
    result = validate_prompt(wf, INFO)
    assert result.error is not None and result.error["type"] == "prompt_outputs_failed_validation"
    assert result.error["details"] == ""  # the failing node is upstream of the output, as in the recording
    (err,) = result.node_errors["5"]["errors"]
    assert (err["type"], err["message"], err["details"]) == (kind, message, details)
    assert result.node_errors["5"]["dependent_outputs"] == ["6"]
    assert result.node_errors["5"]["class_type"] == "VibeVoiceTTS"
