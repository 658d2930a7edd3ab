"""deploy/runpod-template.json: every variable it sets is one narrator reads, and it parses."""

from __future__ import annotations

import configparser
import json
import re
from dataclasses import fields
from pathlib import PurePosixPath

from narrator.models import ModelRegistry
from narrator.settings import PROJECT_WORKFLOWS, Settings
from tests.support.procs import ROOT

TEMPLATE = json.loads((ROOT / "deploy" / "runpod-template.json").read_text())
ENV: dict[str, str] = TEMPLATE["template"]["env"]


def test_every_narrator_variable_is_a_setting() -> None:
    known = {f"NARRATOR_{f.name.upper()}" for f in fields(Settings)}
    assert {k for k in ENV if k.startswith("NARRATOR_")} <= known


def test_the_template_environment_parses_and_fits_runpods_limits() -> None:
    settings = Settings.from_env(ENV)
    assert settings.storage_url.startswith("s3://")
    assert settings.eager  # self-contained: the worker runs the chain on its own ComfyUI
    # The handler must give up (and cancel) before RunPod kills the request.
    assert settings.job_timeout < TEMPLATE["endpoint"]["executionTimeoutMs"] / 1000
    # Base64 of the largest inline audio must fit RunPod's 20 MB response limit.
    assert settings.audio_b64_max_bytes * 4 / 3 < 20 * 1000 * 1000
    registry = ModelRegistry.from_dir(PROJECT_WORKFLOWS)
    assert settings.default_model in registry
    assert all(name in registry for name in settings.warmup_models)


def test_credentials_come_from_runpod_secrets() -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert ENV[name].startswith("{{ RUNPOD_SECRET_"), name


def test_the_image_is_the_packages_version_never_latest() -> None:
    """A worker that scales up later must run what was deployed: a moving tag would swap the image under it."""
    image = TEMPLATE["template"]["imageName"]
    name, _, tag = image.rpartition(":")
    assert "/" not in tag and tag != "latest", image
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    assert re.fullmatch(r"\d+\.\d+\.\d+", tag) and tag == parser["metadata"]["version"], image
    assert name.endswith("/narrator-runpod"), image


def test_the_volume_keeps_the_weights_of_every_model_warmed_up() -> None:
    """VIBEVOICE_MODELS (fetched onto a network volume at boot) covers the folders the warm-up models load."""
    settings = Settings.from_env(ENV)
    registry = ModelRegistry.from_dir(PROJECT_WORKFLOWS)
    kept = {item.partition("=")[0].strip() for item in ENV["VIBEVOICE_MODELS"].split(",") if item.strip()}
    needed = set()
    for name in settings.warmup_models:
        spec = registry.get(name)
        assert spec is not None and spec.weights is not None and spec.weights.folder == "tts", name
        weights = spec.weights
        needed |= {PurePosixPath(f).parts[1] for f in weights.files}  # VibeVoice/<Name>/...
    assert needed and needed <= kept, (needed, kept)
