"""The GPU image installs exactly what was proven: one ComfyUI commit, one node pack commit, one constraints file.

docs/gpu.md says how these pins were run against the real node pack; these checks keep the
Dockerfile, the constraints, the model files and the recorded object_info.json telling one story.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from narrator.models import ModelRegistry
from tests.deploy.dockerfile import copy_args, parse, stages

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "docker" / "Dockerfile.gpu"
CONSTRAINTS = ROOT / "docker" / "constraints-gpu.txt"
#: What decides whether the pack loads and generates (transformers 4.57 did not), and torch under all.
MUST_PIN = ("transformers", "huggingface_hub", "accelerate", "diffusers", "torch", "torchaudio", "tokenizers")


def constraints() -> dict[str, Requirement]:
    out: dict[str, Requirement] = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            assert canonicalize_name(req.name) not in out, f"{req.name} is constrained twice"
            out[canonicalize_name(req.name)] = req
    return out


def arg(name: str) -> str:
    found = re.search(rf"^ARG {name}=(\S+)$", DOCKERFILE.read_text(), re.MULTILINE)
    assert found, f"Dockerfile.gpu has no ARG {name}"
    return found.group(1)


@pytest.mark.parametrize("name", MUST_PIN)
def test_constraints_pin_what_decides_whether_the_pack_runs(name: str) -> None:
    req = constraints().get(canonicalize_name(name))
    assert req is not None, f"{CONSTRAINTS.name} does not cover {name}"
    specs = list(req.specifier)
    assert len(specs) == 1 and specs[0].operator == "==", f"{name} is not pinned to one version: {req}"
    assert "+" not in specs[0].version, f"{name}: a local build ({specs[0].version}) is not on the registry"


def test_every_constraint_is_an_exact_pin() -> None:
    loose = [str(r) for r in constraints().values() if [s.operator for s in r.specifier] != ["=="]]
    assert not loose, f"not exact pins: {loose}"


def test_transformers_is_below_the_release_that_broke_generation() -> None:
    # 4.57.x: VibeVoiceConfig has no num_hidden_layers, every chunk fails (issue 11).
    version = next(iter(constraints()["transformers"].specifier)).version
    assert tuple(int(p) for p in version.split(".")[:2]) < (4, 57)


def test_the_image_installs_comfyui_and_the_pack_under_the_constraints() -> None:
    comfy = next(s for s in stages(parse(DOCKERFILE.read_text())) if s.name == "comfy")
    copied = [copy_args(i) for i in comfy.instructions if i.command == "COPY"]
    dest = next(c.dest for c in copied if c.sources == ("docker/constraints-gpu.txt",))
    installs = [i.args for i in comfy.instructions if i.command == "RUN" and "pip install" in i.args]
    assert installs, "the comfy stage installs nothing"
    for command in installs:
        assert f"--constraint {dest}" in command, command
        assert "-r /comfyui/requirements.txt" in command
        assert "-r /comfyui/custom_nodes/ComfyUI-VibeVoice/requirements.txt" in command
    assert "uv pip" not in DOCKERFILE.read_text(), "uv ignores pip's constraint settings: one installer"


def test_one_node_pack_commit_everywhere() -> None:
    commit = arg("VIBEVOICE_NODES_COMMIT")
    assert re.fullmatch(r"[0-9a-f]{40}", commit)
    repo = arg("VIBEVOICE_NODES_REPO")
    comfy_models = [s for s in ModelRegistry.from_dir(ROOT / "workflows") if s.engine == "comfyui"]
    assert comfy_models
    for spec in comfy_models:
        owner_repo, _, pinned = spec.node_pack.partition("@")
        assert pinned == commit, f"{spec.name}: node_pack {spec.node_pack} is not the image's {commit}"
        assert repo.removesuffix(".git").endswith(owner_repo), (spec.name, repo)
    source = json.loads((ROOT / "narrator" / "comfy" / "object_info.json").read_text())["_source"]
    assert commit in source, "object_info.json was not recorded from the pack the image installs"
    assert arg("COMFYUI_COMMIT") in source, "object_info.json was not recorded from the ComfyUI the image installs"


def test_comfyui_is_pinned_to_a_full_commit() -> None:
    assert re.fullmatch(r"[0-9a-f]{40}", arg("COMFYUI_COMMIT"))


def test_narrator_constraints_cover_every_requirement_and_every_image_uses_them() -> None:
    import subprocess
    import sys

    lock = {}
    for line in (ROOT / "docker" / "constraints-narrator.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            assert [s.operator for s in req.specifier] == ["=="], req
            lock[canonicalize_name(req.name)] = next(iter(req.specifier)).version
    wanted = subprocess.run(
        [sys.executable, str(ROOT / "docker" / "requirements.py"), str(ROOT / "setup.cfg"), "sqs", "flower"],
        check=True, capture_output=True, text=True,
    ).stdout.split()
    for line in wanted:
        req = Requirement(line)
        version = lock.get(canonicalize_name(req.name))
        assert version is not None, f"constraints-narrator.txt does not pin {req.name}"
        assert req.specifier.contains(version), f"{req.name}=={version} is outside setup.cfg's {req}"
    assert "torch" not in lock, "narrator's own virtualenv never has torch"
    for name in ("Dockerfile.cpu", "Dockerfile.gpu"):
        text = (ROOT / "docker" / name).read_text()
        assert "docker/constraints-narrator.txt" in text, name
        installs = [line for line in text.splitlines() if "/opt/narrator/bin/pip install -r" in line]
        assert not installs, f"{name} installs narrator's requirements without the constraints: {installs}"
