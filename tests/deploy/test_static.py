"""Checks of the deployment files that need no Docker engine.

The Compose Specification's JSON schema the checks validate against: see tests/deploy/stack.py.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from narrator.settings import Settings
from tests.deploy.dockerfile import (
    DockerIgnore,
    Instruction,
    copy_args,
    image_tag,
    parse,
    stages,
    substitute,
    variables_read,
)
from tests.deploy.stack import ROOT, compose, compose_raw, env_example, schema_errors

DOCKERFILES = sorted((ROOT / "docker").glob("Dockerfile.*"))
SCRIPTS = sorted((ROOT / "docker").glob("*.sh"))
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: Variables Docker, Compose or the base images define; nobody needs to document them.
PLATFORM_VARS = {"PATH", "HOME", "BASHPID", "HF_HOME", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "PYTHONUNBUFFERED",
                 "PIP_NO_CACHE_DIR", "PIP_DISABLE_PIP_VERSION_CHECK", "PIP_NO_INPUT"}


def docs_text() -> str:
    return "\n".join(p.read_text() for p in DOCS if p.exists()) + (ROOT / ".env.example").read_text()


def setup_version() -> str:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    return parser.get("metadata", "version")


# --- the helpers themselves --------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "values", "expected"),
    [
        ("$A-${B}", {"A": "1", "B": "2"}, "1-2"),
        ("${A:-x}", {}, "x"),
        ("${A:-x}", {"A": "y"}, "y"),
        ("${A:+set}", {"A": "y"}, "set"),
        ("${A:+set}", {}, ""),
        ("python:${TAG}", {"TAG": "3.11-slim"}, "python:3.11-slim"),
    ],
)
def test_substitute(text: str, values: dict[str, str], expected: str) -> None:
    assert substitute(text, values) == expected


def test_substitute_required_missing() -> None:
    with pytest.raises(KeyError, match="A is required"):
        substitute("${A:?set A}", {})


@pytest.mark.parametrize(
    ("image", "tag"),
    [("redis", None), ("redis:7.4", "7.4"), ("localhost:5000/x", None), ("localhost:5000/x:1", "1"),
     ("x@sha256:abc", "sha256:abc"), ("runpod/worker-comfyui:5.5.1-base", "5.5.1-base")],
)
def test_image_tag(image: str, tag: str | None) -> None:
    assert image_tag(image) == tag


def test_parse_joins_continuations_and_drops_comments() -> None:
    text = (
        "# syntax=docker/dockerfile:1.7\nARG X=1\nFROM a:${X} AS one\n"
        "RUN a \\\n  # inside\n  && b\nCOPY --chown=u:g --from=one /x /y\n"
    )
    ins = parse(text)
    assert [i.command for i in ins] == ["ARG", "FROM", "RUN", "COPY"]
    assert ins[2] == Instruction("RUN", "a && b", 4)
    assert stages(ins)[0].base == "a:1" and stages(ins)[0].name == "one"
    copy = copy_args(ins[3])
    assert copy.sources == ("/x",) and copy.dest == "/y" and copy.from_stage == "one"


@pytest.mark.parametrize(
    ("path", "excluded"),
    [("narrator/app.py", False), (".git/config", True), (".env", True), ("narrator/__pycache__/a.pyc", True),
     ("README.md", False), ("tests/x.py", True), ("docker/start-cpu.sh", False)],
)
def test_dockerignore_matching(path: str, excluded: bool) -> None:
    ignore = DockerIgnore.parse("*\n!narrator/\n!README.md\n!docker/\n**/__pycache__\n")
    assert ignore.excluded(path) is excluded


# --- compose.yaml ----------------------------------------------------------------------------

def test_compose_validates_against_the_compose_spec_schema() -> None:
    errors = schema_errors(compose())
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize(
    ("path", "value"),
    [(("services", "redis", "restart_policy"), "always"),  # not a service key
     (("secrets", "hf_token", "env"), "HF_TOKEN"),  # a secret's source is `environment`
     (("services", "comfyui", "build", "secret"), ["hf_token"])],
)
def test_schema_catches_a_broken_compose_file(path: tuple[str, ...], value: object) -> None:
    broken = compose()
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert schema_errors(broken)


def test_every_service_has_an_image_that_exists_or_is_built_here() -> None:
    ours = {}
    for name, service in compose()["services"].items():
        build = service.get("build")
        image = service.get("image")
        assert build or image, name
        if image:
            tag = image_tag(image)
            assert tag and tag != "latest", f"{name}: image {image} is not pinned by tag"
        if build:
            context = ROOT / (build if isinstance(build, str) else build.get("context", "."))
            assert context.is_dir(), name
            dockerfile = context / (build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile")
            assert dockerfile.is_file(), f"{name}: {dockerfile} is missing"
            if isinstance(build, dict) and build.get("target"):
                names = {s.name for s in stages(parse(dockerfile.read_text()))}
                assert build["target"] in names, name
            if image:
                ours[image] = dockerfile
    # Our images carry the package's version, and the RunPod image builds on the GPU one.
    version = setup_version()
    assert all(image_tag(image) == version for image in ours), ours
    runpod = stages(parse((ROOT / "docker" / "Dockerfile.runpod").read_text()))
    assert ours.get(runpod[0].base) == ROOT / "docker" / "Dockerfile.gpu", runpod[0].base


def test_every_variable_compose_interpolates_is_in_env_example() -> None:
    text = (ROOT / "compose.yaml").read_text().replace("$$", "")
    used = {m.group(1) for m in re.finditer(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", text)}
    missing = used - set(env_example())
    assert not missing, f"compose.yaml interpolates {sorted(missing)}, which .env.example does not set"


def test_every_variable_a_service_reads_is_documented() -> None:
    docs = docs_text()
    read: dict[str, set[str]] = {}
    for name, service in compose_raw()["services"].items():
        env = service.get("environment") or {}
        keys = env.keys() if isinstance(env, dict) else (item.split("=", 1)[0] for item in env)
        for key in keys:
            read.setdefault(key, set()).add(f"compose service {name}")
    for script in SCRIPTS:
        for var in variables_read(script.read_text()):
            read.setdefault(var, set()).add(script.name)
    undocumented = {k: v for k, v in read.items() if k not in PLATFORM_VARS and not re.search(rf"\b{k}\b", docs)}
    assert not undocumented, f"undocumented (add to docs/ or .env.example): {undocumented}"


def test_narrator_variables_are_settings_fields() -> None:
    known = {f"NARRATOR_{f.name.upper()}" for f in fields(Settings)}
    texts = [(ROOT / "compose.yaml").read_text(), (ROOT / ".env.example").read_text()]
    texts += [p.read_text() for p in SCRIPTS + DOCKERFILES]
    used = {m for text in texts for m in re.findall(r"\bNARRATOR_[A-Z0-9_]+\b", text)}
    unknown = used - known
    assert not unknown, f"not Settings fields: {sorted(unknown)}"


def test_published_ports_are_on_loopback_and_the_stack_is_wired() -> None:
    services = compose()["services"]
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond the host"
    redis = " ".join(services["redis"]["command"])
    assert "--appendonly yes" in redis and "--maxmemory-policy noeviction" in redis
    devices = services["comfyui"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    raw = compose_raw()["services"]
    assert ":?" in raw["flower"]["environment"]["NARRATOR_FLOWER_BASIC_AUTH"], "Flower must not start without auth"
    assert services["gpu-worker"]["environment"]["NARRATOR_COMFY_URL"] == "http://comfyui:8188"
    assert "backend" in compose()["networks"] and compose()["networks"]["backend"]["internal"] is True
    assert services["storage-init"]["depends_on"]["storage"]["condition"] == "service_healthy"
    for worker in ("cpu-worker", "gpu-worker"):
        depends = services[worker]["depends_on"]
        assert depends["storage-init"]["condition"] == "service_completed_successfully", worker
        assert depends["redis"]["condition"] == "service_healthy", worker
    assert services["example-job"]["restart"] == "no"


# --- Dockerfiles -------------------------------------------------------------------------------

@pytest.fixture(params=DOCKERFILES, ids=lambda p: p.name)
def dockerfile(request: pytest.FixtureRequest) -> Path:
    return request.param  # type: ignore[no-any-return]


def test_base_images_are_pinned_by_tag(dockerfile: Path) -> None:
    seen: set[str] = set()
    for stage in stages(parse(dockerfile.read_text())):
        if stage.base not in seen:
            tag = image_tag(stage.base)
            assert tag and tag != "latest", f"{dockerfile.name}: FROM {stage.base} is not pinned"
        if stage.name:
            seen.add(stage.name)


def test_images_end_as_a_non_root_user(dockerfile: Path) -> None:
    final = stages(parse(dockerfile.read_text()))[-1]
    users = [i.args.split(":")[0] for i in final.instructions if i.command == "USER"]
    assert users, f"{dockerfile.name}: the final stage sets no USER"
    assert users[-1] not in {"root", "0"}, f"{dockerfile.name} ends as {users[-1]}"


def test_copy_sources_exist_and_are_in_the_build_context(dockerfile: Path) -> None:
    ignore = DockerIgnore.parse((ROOT / ".dockerignore").read_text())
    for stage in stages(parse(dockerfile.read_text())):
        for ins in stage.instructions:
            if ins.command not in {"COPY", "ADD"}:
                continue
            copy = copy_args(ins)
            if copy.from_stage:
                continue
            for source in copy.sources:
                assert not source.startswith(("http://", "https://")), f"{dockerfile.name}:{ins.line} downloads"
                matches = list(ROOT.glob(source))
                assert matches, f"{dockerfile.name}:{ins.line}: COPY {source} does not exist"
                for match in matches:
                    rel = match.relative_to(ROOT).as_posix()
                    assert not ignore.excluded(rel), f"{dockerfile.name}:{ins.line}: {rel} is in .dockerignore"


def test_the_narrator_package_is_the_last_layer(dockerfile: Path) -> None:
    final = stages(parse(dockerfile.read_text()))[-1]
    copies = [i for i in final.instructions if i.command in {"COPY", "ADD"}]
    package = [i for i in copies if "narrator" in copy_args(i).sources]
    if not package:
        return  # the RunPod image inherits the package from the GPU image
    later = [i for i in final.instructions if i.line > package[0].line]
    metadata = {"RUN", "USER", "WORKDIR", "EXPOSE", "HEALTHCHECK", "ENTRYPOINT", "CMD"}
    assert all(i.command in metadata for i in later), later


@pytest.mark.parametrize(
    ("name", "command"), [("Dockerfile.gpu", ["health", "--comfy"]), ("Dockerfile.cpu", ["health"])]
)
def test_worker_images_check_their_health(name: str, command: list[str]) -> None:
    """HEALTHCHECK runs ``narrator health``, which reads the ready file the image's ENV names."""
    final = stages(parse((ROOT / "docker" / name).read_text()))[-1]
    checks = [i.args for i in final.instructions if i.command == "HEALTHCHECK"]
    assert len(checks) == 1, f"{name}: the final stage has {len(checks)} HEALTHCHECKs"
    options, _, cmd = checks[0].partition("CMD")
    assert json.loads(cmd) == ["/opt/narrator/bin/narrator", *command], cmd
    for option in ("--interval=", "--timeout=", "--start-period=", "--retries="):
        assert option in options, f"{name}: HEALTHCHECK without {option}"
    env = " ".join(i.args for i in final.instructions if i.command == "ENV")
    assert re.search(r"\bNARRATOR_READY_FILE=/tmp/\S+", env), f"{name}: no NARRATOR_READY_FILE for the check to read"


def test_compose_services_have_health_checks() -> None:
    services = compose()["services"]
    expected = {
        "gpu-worker": ["CMD", "/opt/narrator/bin/narrator", "health", "--comfy"],
        "cpu-worker": ["CMD", "/opt/narrator/bin/narrator", "health"],
    }
    for name, test in expected.items():
        check = services[name]["healthcheck"]
        assert check["test"] == test, name
        assert {"interval", "timeout", "retries", "start_period"} <= set(check), name
    flower = services["flower"]["healthcheck"]
    assert flower["test"][0] == "CMD" and "http://127.0.0.1:5555/healthcheck" in " ".join(flower["test"])
    assert {"interval", "timeout", "retries"} <= set(flower)
    # The one-shot job does not inherit the worker image's check, and runs once the workers are ready.
    assert services["example-job"]["healthcheck"] == {"disable": True}
    assert {s["condition"] for s in services["example-job"]["depends_on"].values()} == {"service_healthy"}


def test_runpod_handler_waits_for_its_gpu_workers_ready_file() -> None:
    """start-runpod.sh: the handler is told the GPU worker's ready file, which the image's HEALTHCHECK reads too."""
    script = (ROOT / "docker" / "start-runpod.sh").read_text()
    gpu_file = re.search(r"^gpu_ready=(\S+)$", script, re.M)
    gpu_env = " ".join(i.args for i in stages(parse((ROOT / "docker" / "Dockerfile.gpu").read_text()))[-1].instructions
                       if i.command == "ENV")
    assert gpu_file and f"NARRATOR_READY_FILE={gpu_file.group(1)}" in gpu_env
    assert 'NARRATOR_READY_FILE="${gpu_ready}" WORKER_NAME=gpu narrator-start-gpu worker' in script
    assert 'handler_waits_for="${gpu_ready}"' in script
    assert 'NARRATOR_READY_FILE="${handler_waits_for}" "${VENV_BIN}/python" -m narrator.runpod_handler' in script
    # The CPU worker writes elsewhere, and a restarted container's leftovers are gone before anything starts.
    assert re.search(r'NARRATOR_READY_FILE="\$\{cpu_ready\}" "\$\{VENV_BIN\}/celery"', script)
    assert script.index('rm -f "${gpu_ready}"') < script.index("narrator-start-gpu comfyui")


def test_weights_and_node_pack_are_pinned_and_baked_early() -> None:
    text = (ROOT / "docker" / "Dockerfile.gpu").read_text()
    commit = re.search(r"ARG VIBEVOICE_NODES_COMMIT=([0-9a-f]+)", text)
    assert commit and len(commit.group(1)) == 40, "the node pack is pinned to a full commit"
    names = [s.name for s in stages(parse(text))]
    assert names.index("weights") < names.index("final")
    assert "models/tts/VibeVoice" in text and "HF_HUB_OFFLINE=1" in text
    assert "--mount=type=secret,id=hf_token" in text


# --- start scripts -------------------------------------------------------------------------------

@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_start_scripts_are_executable_bash(script: Path) -> None:
    assert os.access(script, os.X_OK), f"{script.name} is not executable"
    assert script.read_text().startswith("#!/usr/bin/env bash\n")
    subprocess.run(["bash", "-n", str(script)], check=True)


def test_requirements_helper_reads_setup_cfg() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "docker" / "requirements.py"), str(ROOT / "setup.cfg"), "sqs"],
                         check=True, capture_output=True, text=True).stdout.split()
    assert any(r.startswith("celery[redis]") for r in out) and any(r.startswith("celery[sqs]") for r in out)
    assert not any("piper" in r or "torch" in r for r in out), "workers' images stay free of GPL and torch"


def test_cpu_start_refuses_flower_without_auth(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NARRATOR_FLOWER_BASIC_AUTH"}
    done = subprocess.run(["bash", str(ROOT / "docker" / "start-cpu.sh"), "flower"], env=env,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 64 and "NARRATOR_FLOWER_BASIC_AUTH" in done.stderr
