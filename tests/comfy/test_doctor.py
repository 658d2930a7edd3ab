"""``narrator doctor`` against the fake ComfyUI: each failure it must catch, and the synthesis figures."""

from __future__ import annotations

import argparse
import re
import sys

import pytest

from narrator.cli import main
from narrator.cli.doctor import register
from narrator.settings import Settings
from tests.fakes.comfyui import FakeComfy
from tests.support.comfy import ROOT
from tests.support.procs import free_port

PACK = "wildminder/ComfyUI-VibeVoice@d04665d"


def doctor(fake: FakeComfy, *argv: str, timeout: float = 10.0) -> int:
    parser = argparse.ArgumentParser(prog="narrator")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["doctor", "--comfy", fake.url, *argv])
    return int(args.func(args, Settings(workflows_dir=ROOT / "workflows", comfy_timeout=timeout)))


def lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().out.splitlines()


def test_all_pass(fake_comfy: FakeComfy, capsys: pytest.CaptureFixture[str]) -> None:
    assert doctor(fake_comfy) == 0
    out = lines(capsys)
    assert out[0] == f"ok   ComfyUI 0.3.64 at {fake_comfy.url} (PyTorch 2.8.0+cu128, Python {sys.version.split()[0]})"
    assert out[1] == "ok   GPU cuda:0 Fake GPU : cudaMallocAsync: 24.0 GiB, 0.5 GiB in use (a sample)"
    assert all(line.startswith("ok   ") for line in out), out
    assert f"ok   node pack {PACK}: VibeVoiceTTS present" in out
    for model, name in (("vibevoice-1.5b", "VibeVoice-1.5B"), ("vibevoice-large", "VibeVoice-Large")):
        assert f"ok   {model}: workflow valid against the server's /object_info" in out
        assert f"ok   {model}: weights present in models/tts/VibeVoice/{name} (4 files, 1 .safetensors)" in out
    assert not any("local" in line for line in out)  # the embedded model has nothing to check on ComfyUI
    assert fake_comfy.stats.prompts_posted == 0  # checks alone run nothing


def test_node_pack_missing(fake_comfy: FakeComfy, capsys: pytest.CaptureFixture[str]) -> None:
    fake_comfy.configure(drop_nodes=["VibeVoiceTTS"])
    assert doctor(fake_comfy) == 1
    out = lines(capsys)
    assert (
        f"FAIL node pack {PACK}: node VibeVoiceTTS missing — fix: install the node pack "
        "wildminder/ComfyUI-VibeVoice at d04665d073dd9a587e682422deba5927e31ccac4 (docker/Dockerfile.gpu pins it) "
        "and restart ComfyUI"
    ) in out
    assert "ok   ComfyUI built-in nodes: LoadAudio, SaveAudio present" in out
    assert "skip vibevoice-1.5b: workflow not checked: nodes missing" in out


def test_weights_missing(fake_comfy: FakeComfy, capsys: pytest.CaptureFixture[str]) -> None:
    fake_comfy.configure(drop_files=["VibeVoice/VibeVoice-Large/tokenizer.json"])
    assert doctor(fake_comfy) == 1
    out = lines(capsys)
    assert (
        "FAIL vibevoice-large: weights missing: VibeVoice/VibeVoice-Large/tokenizer.json — fix: bake weights: "
        "docker build -f docker/Dockerfile.gpu --build-arg VIBEVOICE_MODELS=VibeVoice-Large ., "
        "or mount them at /comfyui/models/tts/VibeVoice/VibeVoice-Large"
    ) in out
    assert [line for line in out if line.startswith("FAIL")] == [next(x for x in out if x.startswith("FAIL"))]
    assert doctor(fake_comfy, "--models", "vibevoice-1.5b") == 0  # the other model is fine
    assert not any("vibevoice-large" in line for line in lines(capsys))


def test_no_model_folder(fake_comfy: FakeComfy, capsys: pytest.CaptureFixture[str]) -> None:
    fake_comfy.configure(model_files={})  # ComfyUI answers 404: no node pack registered 'tts'
    assert doctor(fake_comfy, "--models", "vibevoice-1.5b") == 1
    expected = "FAIL vibevoice-1.5b: weights missing: ComfyUI has no 'tts' model folder"
    expected += f" (install {PACK}: it registers it)"
    assert expected in capsys.readouterr().out


def test_workflow_invalid_against_the_live_server(fake_comfy: FakeComfy, capsys: pytest.CaptureFixture[str]) -> None:
    # Another version of the pack: a new required input, and only the small model on offer.
    fake_comfy.configure(input_overrides={"VibeVoiceTTS": {
        "voice_preset": [["calm", "bright"], {}], "model_name": [["VibeVoice-1.5B"], {}]}})
    assert doctor(fake_comfy) == 1
    out = lines(capsys)
    small = next(line for line in out if line.startswith("FAIL vibevoice-1.5b: workflow invalid"))
    assert "Required input is missing: voice_preset" in small and "fix: install " in small
    large = next(line for line in out if line.startswith("FAIL vibevoice-large: workflow invalid"))
    assert "Value not in list: model_name: 'VibeVoice-Large' not in ['VibeVoice-1.5B'] (+1 more) — fix:" in large
    assert out[out.index(large) + 1] == (
        "       vibevoice-large.json: node 5 (VibeVoice TTS, VibeVoiceTTS): Required input is missing: voice_preset"
    )
    assert f"ok   node pack {PACK}: VibeVoiceTTS present" in out


def test_cpu_only_server(fake_comfy: FakeComfy, capsys: pytest.CaptureFixture[str]) -> None:
    fake_comfy.configure(gpu=False)
    assert doctor(fake_comfy) == 1
    gpu = lines(capsys)[1]
    assert gpu.startswith("FAIL ComfyUI runs without a GPU (devices: cpu) — fix: give ComfyUI the GPU")


def test_unknown_model_name(fake_comfy: FakeComfy, capsys: pytest.CaptureFixture[str]) -> None:
    assert doctor(fake_comfy, "--models", "vibevoice-1.5b,nope") == 1
    assert "FAIL no model named 'nope' — fix: see `narrator models list`" in lines(capsys)


def test_unreachable_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["doctor", "--comfy", url]) == 1  # through the real entry point: the command is registered
    out = lines(capsys)
    assert len(out) == 1, out
    assert out[0].startswith(f"FAIL ComfyUI at {url}") and "— fix: start ComfyUI" in out[0]
    assert "NARRATOR_COMFY_URL" in out[0]


FIGURES = re.compile(
    r"^ok   (?P<model>\S+): first chunk in (?P<first>[\d.]+) s; (?P<per100>[\d.]+) s of synthesis per 100 words "
    r"\(real-time factor (?P<rtf>[\d.]+): (?P<words>\d+) words, (?P<audio>[\d.]+) s of audio in (?P<synth>[\d.]+) s\); "
    r"VRAM in use (?P<after>[\d.]+) GiB after, (?P<before>[\d.]+) GiB before \(samples of /system_stats, not a peak\)$"
)


@pytest.mark.fake_comfy(synth_seconds=0.5)
def test_synthesize_prints_figures(fake_comfy: FakeComfy, capsys: pytest.CaptureFixture[str]) -> None:
    assert doctor(fake_comfy, "--synthesize") == 0
    found = {m["model"]: m for line in lines(capsys) if (m := FIGURES.match(line))}
    assert set(found) == {"vibevoice-1.5b", "vibevoice-large"}
    vram = {"vibevoice-1.5b": 6.5, "vibevoice-large": 19.5}  # the fake's CUDA context + model, once it ran
    for model, m in found.items():
        first, synth, audio = float(m["first"]), float(m["synth"]), float(m["audio"])
        words, per100, rtf = int(m["words"]), float(m["per100"]), float(m["rtf"])
        # A fake prompt lasts 0.5 s all in; HTTP, the upload and the download add a little.
        assert 0.5 <= first < 3.0 and 0.5 <= synth < 3.0
        assert per100 == pytest.approx(synth / words * 100, abs=0.02)
        assert rtf == pytest.approx(synth / audio, abs=0.002)
        # The fake speaks 0.3 s per word, with a breath after a sentence and a pause after its line.
        assert words * 0.3 < audio < words * 0.3 + 1.0
        assert float(m["after"]) == vram[model]
    assert float(found["vibevoice-1.5b"]["before"]) == 0.5
    assert float(found["vibevoice-large"]["before"]) == 6.5  # still holding the small model
    assert fake_comfy.stats.nodes_executed["VibeVoiceTTS"] == 4  # two sentences per model, none from the cache


def test_synthesize_only_ready_models(fake_comfy: FakeComfy, capsys: pytest.CaptureFixture[str]) -> None:
    fake_comfy.configure(drop_files=["VibeVoice/VibeVoice-Large/config.json"])
    assert doctor(fake_comfy, "--synthesize") == 1
    out = lines(capsys)
    assert "skip vibevoice-large: synthesis not tried: weights missing: VibeVoice/VibeVoice-Large/config.json" in out
    assert sum(1 for line in out if FIGURES.match(line)) == 1
    assert {p["5"]["inputs"]["model_name"] for p in fake_comfy.stats.prompts} == {"VibeVoice-1.5B"}


def test_synthesis_failure_is_a_failed_check(fake_comfy: FakeComfy, capsys: pytest.CaptureFixture[str]) -> None:
    fake_comfy.configure(fail_node="VibeVoiceTTS")
    assert doctor(fake_comfy, "--synthesize", "--models", "vibevoice-1.5b") == 1
    last = lines(capsys)[-1]
    assert last.startswith("FAIL vibevoice-1.5b: synthesis failed: ComfyUI node 5 (VibeVoiceTTS) failed: "
                           "torch.OutOfMemoryError: CUDA error: out of memory — fix: read ComfyUI's log")
