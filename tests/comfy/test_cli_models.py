"""``narrator models list`` / ``narrator models validate [--comfy URL]``."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest

from narrator.cli_models import register
from narrator.settings import Settings
from tests.fakes.comfyui import FakeComfy
from tests.support.comfy import ROOT
from tests.support.procs import free_port


def run(argv: list[str], settings: Settings) -> int:
    parser = argparse.ArgumentParser(prog="narrator")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return int(args.func(args, settings))


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
    assert run(["models", "validate", "--comfy", f"http://127.0.0.1:{free_port()}"], settings) == 2
    assert "error:" in capsys.readouterr().err


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
