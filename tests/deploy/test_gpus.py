"""deploy/gpus.py: one ComfyUI and one GPU worker per device id, as a compose override (issue 13, point 9)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.deploy.stack import ROOT, active, compose_raw, env_example, interpolate, merge, schema_errors

SCRIPT = ROOT / "deploy" / "gpus.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("deploy_gpus", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gpus = _load()


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0", ["0"]), ("0,1,2", ["0", "1", "2"]), (" 1 , 3 ", ["1", "3"]), ("7", ["7"]), ("10,2", ["10", "2"])],
)
def test_device_ids(text: str, expected: list[str]) -> None:
    assert gpus.parse_device_ids(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected GPU indices"),
        ("0,,1", "expected GPU indices"),
        ("0,", "expected GPU indices"),
        ("a", "a is not a GPU index"),
        ("-1", "-1 is not a GPU index"),
        ("GPU-8f2a", "GPU-8f2a is not a GPU index"),
        ("٣", "is not a GPU index"),  # a digit, but not one nvidia-smi prints
        ("0,1,0", "0 given twice"),
        ("7,07", "07 is not a GPU index"),
    ],
)
def test_bad_device_ids_are_refused_naming_them(text: str, message: str) -> None:
    with pytest.raises(gpus.UsageError, match=message) as raised:
        gpus.parse_device_ids(text)
    assert str(raised.value).startswith("device ids:")


def stack(device_ids: list[str]) -> dict[str, Any]:
    """compose.yaml with the generated override, as Compose would merge and interpolate them."""
    override = yaml.safe_load(gpus.render(device_ids, (ROOT / "compose.yaml").read_text()))
    return interpolate(merge(compose_raw(), override), env_example())  # type: ignore[no-any-return]


CASES = [["0"], ["0", "1"], ["1", "3"], ["0", "1", "2", "3"]]


@pytest.mark.parametrize("ids", CASES, ids=",".join)
def test_the_merged_stack_is_valid_compose(ids: list[str]) -> None:
    errors = schema_errors(stack(ids))
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("ids", CASES, ids=",".join)
def test_one_comfyui_per_gpu_and_one_worker_per_comfyui(ids: list[str]) -> None:
    started = active(stack(ids)["services"])
    comfys = {n: s for n, s in started.items() if s.get("command") == ["comfyui"]}
    workers = {n: s for n, s in started.items() if s.get("command") == ["worker"] and n.startswith("gpu-worker")}
    assert sorted(comfys) == sorted(f"comfyui-{d}" for d in ids)
    assert sorted(workers) == sorted(f"gpu-worker-{d}" for d in ids)
    held = [dev for s in comfys.values() for r in s["deploy"]["resources"]["reservations"]["devices"]
            for dev in r["device_ids"]]
    assert sorted(held) == sorted(ids), "each GPU is held by exactly one ComfyUI"
    for d in ids:
        devices = comfys[f"comfyui-{d}"]["deploy"]["resources"]["reservations"]["devices"]
        assert devices == [{"driver": "nvidia", "device_ids": [d], "capabilities": ["gpu"]}]
        worker = workers[f"gpu-worker-{d}"]
        assert worker["environment"]["NARRATOR_COMFY_URL"] == f"http://comfyui-{d}:8188"
        assert worker["depends_on"][f"comfyui-{d}"] == {"condition": "service_healthy"}
        assert not any(k.startswith("comfyui") and k != f"comfyui-{d}" for k in worker["depends_on"])
        assert worker["hostname"] == f"gpu-{d}" and worker["environment"]["WORKER_INDEX"] == d
        assert "deploy" not in worker, "the worker talks to ComfyUI over HTTP: it holds no GPU"


@pytest.mark.parametrize("ids", CASES, ids=",".join)
def test_the_single_gpu_pair_is_replaced_and_nothing_needs_it(ids: list[str]) -> None:
    services = stack(ids)["services"]
    started = active(services)
    assert "comfyui" not in started and "gpu-worker" not in started
    for profiles in (set(), {"example"}, {"monitoring"}):
        running = active(services, profiles)
        for name, service in running.items():
            missing = set(service.get("depends_on") or ()) - set(running)
            assert not missing, f"{name} depends on {missing}, which does not start"


@pytest.mark.parametrize("ids", CASES, ids=",".join)
def test_every_container_keeps_a_host_name_of_its_own(ids: list[str]) -> None:
    started = active(stack(ids)["services"], {"example", "monitoring"})
    names = [s["hostname"] for s in started.values() if "hostname" in s]
    assert len(names) == len(set(names)), names
    workers = [n for n, s in started.items() if s.get("command") == ["worker"]]
    assert all("hostname" in started[n] for n in workers), workers


def test_the_copies_keep_what_the_templates_say() -> None:
    """Everything but the per-GPU fields is compose.yaml's: limits, grace, health, metrics alias."""
    base = compose_raw()["services"]
    override = gpus.gpu_override(["5"], base)["services"]
    worker, comfy = override["gpu-worker-5"], override["comfyui-5"]
    for key in ("image", "build", "command", "healthcheck", "stop_grace_period", "networks", "restart", "expose"):
        assert worker[key] == base["gpu-worker"][key], key
    assert comfy["healthcheck"] == base["comfyui"]["healthcheck"] and comfy["build"] == base["comfyui"]["build"]
    changed = {k for k, v in worker["environment"].items() if base["gpu-worker"]["environment"].get(k) != v}
    assert changed == {"NARRATOR_COMFY_URL", "WORKER_INDEX"}


def test_a_compose_file_without_the_pair_is_refused() -> None:
    base = compose_raw()["services"]
    with pytest.raises(gpus.UsageError, match="comfyui and gpu-worker"):
        gpus.gpu_override(["0"], {k: v for k, v in base.items() if k != "comfyui"})
    broken = dict(base, **{"gpu-worker": dict(base["gpu-worker"], depends_on={"redis": {}})})
    with pytest.raises(gpus.UsageError, match="must depend on comfyui"):
        gpus.gpu_override(["0"], broken)


def test_the_command_line() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "0,2"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("# Generated by `python deploy/gpus.py 0,2`")
    assert "&" not in done.stdout.split("\n", 1)[1], "no YAML anchors: each service reads whole"
    assert set(yaml.safe_load(done.stdout)["services"]) == {
        "comfyui", "gpu-worker", "comfyui-0", "gpu-worker-0", "comfyui-2", "gpu-worker-2"}
    bad = subprocess.run([sys.executable, str(SCRIPT), "0,x"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "device ids: x is not a GPU index" in bad.stderr and not bad.stdout
    usage = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, check=False)
    assert usage.returncode == 2 and "compose.gpus.yaml" in usage.stderr
