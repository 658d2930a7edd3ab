"""Readiness: can a server run a model now? A table of server states and what each model is told."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from narrator.comfy.object_info import packaged
from narrator.comfy.readiness import (
    FAIL,
    OK,
    SKIP,
    ServerView,
    assess,
    model_folder,
    pack_checks,
    short_pack,
)
from narrator.comfy.system import GIB, parse_system_stats, vram_used
from narrator.models import ModelSpec, load_folder
from tests.support.comfy import ROOT

SPECS = {s.name: s for s in load_folder(ROOT / "workflows")[0]}
PACK = "wildminder/ComfyUI-VibeVoice@d04665d"


def _files(name: str) -> list[str]:
    return [f"VibeVoice/{name}/{f}" for f in ("config.json", "preprocessor_config.json",
                                              "model.safetensors.index.json", "tokenizer.json")]


FULL = sorted(_files("VibeVoice-1.5B") + _files("VibeVoice-Large") + [
    "VibeVoice/VibeVoice-1.5B/model-00001-of-00003.safetensors",
    "VibeVoice/VibeVoice-Large/model-00001-of-00010.safetensors",
])


def _info(change: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    info = json.loads(json.dumps(packaged()))
    if change is not None:
        change(info)
    return info


def _drop(*names: str) -> Callable[[dict[str, Any]], None]:
    def change(info: dict[str, Any]) -> None:
        for name in names:
            del info[name]
    return change


def _model_names(*names: str) -> Callable[[dict[str, Any]], None]:
    def change(info: dict[str, Any]) -> None:
        info["VibeVoiceTTS"]["input"]["required"]["model_name"][0] = list(names)
    return change


def _new_required(info: dict[str, Any]) -> None:
    info["VibeVoiceTTS"]["input"]["required"]["voice_preset"] = [["calm", "bright"], {}]


def _without(*gone: str) -> list[str]:
    return [f for f in FULL if f not in gone]


CASES = [
    # id, model, info change, tts listing (None: 404), label, {check: (status, text in summary)}
    ("everything there", "vibevoice-large", None, FULL, "yes",
     {"nodes": (OK, "present"), "workflow": (OK, "valid"), "weights": (OK, "4 files, 1 .safetensors")}),
    ("node pack missing", "vibevoice-1.5b", _drop("VibeVoiceTTS"), FULL,
     f"no: node VibeVoiceTTS missing (install {PACK})",
     {"nodes": (FAIL, "VibeVoiceTTS"), "workflow": (SKIP, "nodes missing"), "weights": (OK, "present")}),
    ("built-in node missing", "vibevoice-1.5b", _drop("LoadAudio"), FULL,
     "no: node LoadAudio missing (built into ComfyUI: update it)",
     {"nodes": (FAIL, "LoadAudio"), "workflow": (SKIP, "")}),
    ("both kinds missing", "vibevoice-1.5b", _drop("LoadAudio", "VibeVoiceTTS"), FULL,
     f"no: node VibeVoiceTTS missing (install {PACK}); node LoadAudio missing (built into ComfyUI: update it)",
     {"nodes": (FAIL, "")}),
    ("model_name not offered", "vibevoice-large", _model_names("VibeVoice-1.5B"), FULL,
     "no: workflow invalid: vibevoice-large.json: node 5 (VibeVoice TTS, VibeVoiceTTS): Value not in list: "
     "model_name: 'VibeVoice-Large' not in ['VibeVoice-1.5B']",
     {"nodes": (OK, ""), "workflow": (FAIL, "model_name"), "weights": (OK, "")}),
    ("the other model's name is enough for it", "vibevoice-1.5b", _model_names("VibeVoice-1.5B"), FULL, "yes", {}),
    ("another pack version wants a new input", "vibevoice-1.5b", _new_required, FULL,
     "no: workflow invalid: vibevoice-1.5b.json: node 5 (VibeVoice TTS, VibeVoiceTTS): Required input is missing: "
     "voice_preset", {"workflow": (FAIL, "voice_preset")}),
    ("tokenizer not fetched", "vibevoice-large", None, _without("VibeVoice/VibeVoice-Large/tokenizer.json"),
     "no: weights missing: VibeVoice/VibeVoice-Large/tokenizer.json", {"weights": (FAIL, "tokenizer.json")}),
    ("two files missing", "vibevoice-1.5b", None,
     _without("VibeVoice/VibeVoice-1.5B/config.json", "VibeVoice/VibeVoice-1.5B/tokenizer.json"),
     "no: weights missing: VibeVoice/VibeVoice-1.5B/config.json, VibeVoice/VibeVoice-1.5B/tokenizer.json", {}),
    ("no shard", "vibevoice-large", None, _without("VibeVoice/VibeVoice-Large/model-00001-of-00010.safetensors"),
     "no: weights missing: no .safetensors under VibeVoice/VibeVoice-Large", {}),
    ("another model's shard does not count", "vibevoice-large", None,
     [*_files("VibeVoice-Large"), "VibeVoice/VibeVoice-1.5B/model-00001-of-00003.safetensors"],
     "no: weights missing: no .safetensors under VibeVoice/VibeVoice-Large", {}),
    ("no tts folder at all", "vibevoice-1.5b", None, None,
     f"no: weights missing: ComfyUI has no 'tts' model folder (install {PACK}: it registers it)", {}),
    ("empty tts folder", "vibevoice-1.5b", None, [],
     "no: weights missing: " + ", ".join(_files("VibeVoice-1.5B")) + ", no .safetensors under VibeVoice/VibeVoice-1.5B",
     {}),
    ("nodes and weights both wrong: nodes first", "vibevoice-large", _drop("VibeVoiceTTS"), [],
     f"no: node VibeVoiceTTS missing (install {PACK})", {"weights": (FAIL, "")}),
]


@pytest.mark.parametrize(("model", "change", "listing", "label", "checks"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_readiness(model: str, change: Callable[[dict[str, Any]], None] | None, listing: list[str] | None,
                   label: str, checks: dict[str, tuple[str, str]]) -> None:
    server = ServerView(_info(change), {"tts": listing})
    readiness = assess(SPECS[model], server, packaged())
    assert readiness.label == label
    assert readiness.ok is (label == "yes")
    assert [c.name for c in readiness.checks] == ["nodes", "workflow", "weights"]
    for name, (status, text) in checks.items():
        check = readiness.check(name)
        assert check is not None and check.status == status and text in check.summary, check
        assert bool(check.fix) is (status == FAIL)


def test_fix_hints_name_what_to_do() -> None:
    missing_node = assess(SPECS["vibevoice-1.5b"], ServerView(_info(_drop("VibeVoiceTTS")), {"tts": FULL}))
    assert missing_node.checks[0].fix == (
        "install the node pack wildminder/ComfyUI-VibeVoice at d04665d073dd9a587e682422deba5927e31ccac4 "
        "(docker/Dockerfile.gpu pins it) and restart ComfyUI"
    )
    no_weights = assess(SPECS["vibevoice-1.5b"], ServerView(_info(), {"tts": []})).checks[2]
    assert no_weights.fix == (
        "bake weights: docker build -f docker/Dockerfile.gpu --build-arg VIBEVOICE_MODELS=VibeVoice-1.5B ., "
        "or mount them at /comfyui/models/tts/VibeVoice/VibeVoice-1.5B"
    )
    old_comfy = assess(SPECS["vibevoice-1.5b"], ServerView(_info(_drop("SaveAudio")), {"tts": FULL}), packaged())
    assert old_comfy.checks[0].fix.startswith("update ComfyUI")


def test_without_the_snapshot_an_unknown_node_is_blamed_on_the_pack() -> None:
    readiness = assess(SPECS["vibevoice-1.5b"], ServerView(_info(_drop("LoadAudio")), {"tts": FULL}))
    assert readiness.reason == f"node LoadAudio missing (install {PACK})"


def test_embedded_and_unknown_engines() -> None:
    empty = ServerView({}, {})
    assert assess(SPECS["local"], empty).label == "yes (in-process)"
    other = assess(ModelSpec(name="x", engine="coqui"), empty)
    assert other.label == "no: unknown engine 'coqui'" and not other.ok


def test_unreadable_workflow(tmp_path: Any) -> None:
    (tmp_path / "x.json").write_text("{not json")
    spec = SPECS["vibevoice-1.5b"].model_copy(update={"name": "x", "workflow": "x.json", "source": tmp_path / "x.toml"})
    readiness = assess(spec, ServerView(_info(), {"tts": FULL}))
    assert readiness.reason.startswith("x.json: cannot read workflow")
    assert readiness.check("weights") is not None


def test_model_without_weights_table_is_not_held_back() -> None:
    spec = SPECS["vibevoice-1.5b"].model_copy(update={"weights": None})
    readiness = assess(spec, ServerView(_info(), {}))
    assert readiness.label == "yes"
    weights = readiness.check("weights")
    assert weights is not None and weights.summary == "no [weights] in the model file: not checked"


@pytest.mark.parametrize(
    ("drop", "expected"),
    [
        ((), [(OK, f"node pack {PACK}: VibeVoiceTTS present"),
              (OK, "ComfyUI built-in nodes: LoadAudio, SaveAudio present")]),
        (("VibeVoiceTTS",), [(FAIL, f"node pack {PACK}: node VibeVoiceTTS missing"),
                             (OK, "ComfyUI built-in nodes: LoadAudio, SaveAudio present")]),
        (("LoadAudio", "SaveAudio"), [(OK, f"node pack {PACK}: VibeVoiceTTS present"),
                                      (FAIL, "ComfyUI built-in nodes: nodes LoadAudio, SaveAudio missing")]),
    ],
)
def test_pack_checks(drop: tuple[str, ...], expected: list[tuple[str, str]]) -> None:
    checks = pack_checks(SPECS.values(), _info(_drop(*drop)), packaged())
    assert [(c.status, c.summary) for c in checks] == expected


def test_short_pack_and_model_folder() -> None:
    assert short_pack("wildminder/ComfyUI-VibeVoice@d04665d073dd9a587e682422deba5927e31ccac4") == PACK
    assert short_pack("owner/repo") == "owner/repo" and short_pack("o/r@v1.4") == "o/r@v1.4"
    assert model_folder(["VibeVoice/A/config.json", "VibeVoice/A/sub/x.json"]) == "VibeVoice/A"
    assert model_folder(["config.json"]) == ""


SYSTEM_GPU = {  # the shape ComfyUI 0.3.64 answers on a CUDA box
    "system": {"os": "posix", "ram_total": 67_000_000_000, "ram_free": 60_000_000_000, "comfyui_version": "0.3.64",
               "required_frontend_version": "1.27.10", "python_version": "3.12.3 (main, ...) [GCC 13.2.0]",
               "pytorch_version": "2.8.0+cu128", "embedded_python": False, "argv": ["main.py"]},
    "devices": [{"name": "cuda:0 NVIDIA L4 : cudaMallocAsync", "type": "cuda", "index": 0,
                 "vram_total": 24 * GIB, "vram_free": 18 * GIB, "torch_vram_total": 5 * GIB,
                 "torch_vram_free": GIB}],
}
SYSTEM_CPU = {  # and with --cpu, as recorded for shared/comfy
    "system": {"os": "posix", "comfyui_version": "0.3.64", "python_version": "3.11.13",
               "pytorch_version": "2.13.0+cpu"},
    "devices": [{"name": "cpu", "type": "cpu", "index": None, "vram_total": 8 * GIB, "vram_free": 4 * GIB}],
}


def test_system_stats() -> None:
    gpu = parse_system_stats(SYSTEM_GPU)
    assert (gpu.comfyui_version, gpu.pytorch_version, gpu.python_version) == ("0.3.64", "2.8.0+cu128", "3.12.3")
    assert gpu.gpu is not None and gpu.gpu.vram_used == 6 * GIB and vram_used(SYSTEM_GPU) == 6 * GIB
    assert gpu.gpu.name == "cuda:0 NVIDIA L4 : cudaMallocAsync" and gpu.devices == (gpu.gpu,)
    cpu = parse_system_stats(SYSTEM_CPU)
    assert cpu.gpu is None and vram_used(SYSTEM_CPU) is None
    old = parse_system_stats({"system": {"os": "posix"}, "devices": [{"name": "cuda:0 X", "type": "cuda"}]})
    assert old.comfyui_version == "unknown" and old.gpu is not None and old.gpu.vram_used is None
