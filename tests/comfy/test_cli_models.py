"""``narrator models list`` / ``narrator models validate [--comfy URL]``."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest

from narrator.cli import main
from narrator.cli.models import register
from narrator.settings import Settings
from tests.fakes.comfyui import FakeComfy
from tests.support.comfy import ROOT
from tests.support.procs import free_port


def run(argv: list[str], settings: Settings) -> int:
    parser = argparse.ArgumentParser(prog="narrator")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return int(args.func(args, settings))


def main_with(argv: list[str], settings: Settings) -> int:
    """Through the real entry point (its error handling and exit codes), with these settings."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("NARRATOR_WORKFLOWS_DIR", str(settings.workflows_dir))
        env.setenv("NARRATOR_COMFY_TIMEOUT", str(settings.comfy_timeout))
        return main(argv)


SHIPPED = Settings(workflows_dir=ROOT / "workflows")


def test_list_shows_every_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["models", "list"], SHIPPED) == 0
    out = capsys.readouterr().out
    for name in ("vibevoice-large", "vibevoice-1.5b", "local (default)"):
        assert name in out
    line = next(row for row in out.splitlines() if row.startswith("vibevoice-large"))
    assert "comfyui" in line and "24000" in line and "cfg_scale, seed, steps, temperature, top_p" in line


def test_validate_offline_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["models", "validate"], SHIPPED) == 0
    out = capsys.readouterr().out
    assert "ok   vibevoice-large (comfyui)" in out and "ok   local (embedded)" in out
    assert "against the shipped object_info.json snapshot" in out


def test_validate_against_a_live_server(fake_comfy: FakeComfy, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["models", "validate", "--comfy", fake_comfy.url], SHIPPED) == 0
    assert f"against {fake_comfy.url} /object_info" in capsys.readouterr().out


def test_validate_unreachable_server(capsys: pytest.CaptureFixture[str]) -> None:
    settings = SHIPPED.with_(comfy_timeout=1.0)
    assert main_with(["models", "validate", "--comfy", f"http://127.0.0.1:{free_port()}"], settings) == 1
    assert capsys.readouterr().err.startswith("narrator: ComfyUI at http://127.0.0.1:")


def test_validate_reports_each_broken_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "workflows"
    shutil.copytree(ROOT / "workflows", folder)
    toml = (folder / "vibevoice-1.5b.toml").read_text()
    (folder / "vibevoice-1.5b.toml").write_text(toml.replace('input = "inference_steps"', 'input = "diffusion_steps"'))
    wf = json.loads((folder / "vibevoice-large.json").read_text())
    wf["5"]["inputs"]["cfg_scale"] = 60.0
    (folder / "vibevoice-large.json").write_text(json.dumps(wf))
    (folder / "broken.toml").write_text("name = 'broken'\nengine = 'comfyui'\nspeakers = 99\n")
    assert run(["models", "validate"], SHIPPED.with_(workflows_dir=folder)) == 1
    captured = capsys.readouterr()
    assert "FAIL vibevoice-1.5b" in captured.out
    assert "parameter 'steps' -> node 'VibeVoice TTS'" in captured.out and "no input 'diffusion_steps'" in captured.out
    assert "FAIL vibevoice-large" in captured.out and "Value 60.0 bigger than max of 50.0: cfg_scale" in captured.out
    assert "ok   local" in captured.out
    assert "broken.toml: speakers" in captured.err


def _ready_column(out: str) -> dict[str, str]:
    header, *rows = out.splitlines()
    at = header.index("READY ON ")
    return {row.split()[0]: row[at:].strip() for row in rows}


@pytest.mark.parametrize(
    ("change", "small", "large"),
    [
        ({}, "yes", "yes"),
        ({"drop_files": ["VibeVoice/VibeVoice-Large/tokenizer.json"]},
         "yes", "no: weights missing: VibeVoice/VibeVoice-Large/tokenizer.json"),
        ({"drop_nodes": ["VibeVoiceTTS"]},
         "no: node VibeVoiceTTS missing (install wildminder/ComfyUI-VibeVoice@d04665d)",
         "no: node VibeVoiceTTS missing (install wildminder/ComfyUI-VibeVoice@d04665d)"),
        ({"input_overrides": {"VibeVoiceTTS": {"model_name": [["VibeVoice-1.5B"], {}]}}},
         "yes", "no: workflow invalid: vibevoice-large.json: node 5 (VibeVoice TTS, VibeVoiceTTS): Value not in list: "
                "model_name: 'VibeVoice-Large' not in ['VibeVoice-1.5B']"),
    ],
    ids=["ready", "weights missing", "node missing", "model not offered"],
)
def test_list_says_what_the_server_can_run(change: dict[str, object], small: str, large: str,
                                           fake_comfy: FakeComfy, capsys: pytest.CaptureFixture[str]) -> None:
    fake_comfy.configure(**change)
    assert run(["models", "list", "--comfy", fake_comfy.url], SHIPPED) == 0
    out = capsys.readouterr().out
    assert f"READY ON {fake_comfy.url}" in out.splitlines()[0]
    assert _ready_column(out) == {"local": "yes (in-process)", "vibevoice-1.5b": small, "vibevoice-large": large}


def test_list_comfy_alone_asks_the_configured_server(fake_comfy: FakeComfy,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["models", "list", "--comfy"], SHIPPED.with_(comfy_url=fake_comfy.url)) == 0
    assert _ready_column(capsys.readouterr().out)["vibevoice-1.5b"] == "yes"


def test_list_without_comfy_asks_no_server(capsys: pytest.CaptureFixture[str]) -> None:
    settings = SHIPPED.with_(comfy_url=f"http://127.0.0.1:{free_port()}", comfy_timeout=1.0)
    assert run(["models", "list"], settings) == 0
    assert "READY" not in capsys.readouterr().out


def test_list_comfy_unreachable(capsys: pytest.CaptureFixture[str]) -> None:
    settings = SHIPPED.with_(comfy_timeout=1.0)
    assert main_with(["models", "list", "--comfy", f"http://127.0.0.1:{free_port()}"], settings) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("narrator: ComfyUI at http://127.0.0.1:")
