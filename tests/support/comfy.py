"""Fixtures for ComfyUI: a fake server per test, and settings pointing at it.

``fake_comfy`` yields a running :class:`tests.fakes.comfyui.FakeComfy` (``.url``,
``.configure(...)``, ``.restart()``, ``.stats``, ``.output_files()``). Mark a test
``@pytest.mark.fake_comfy(synth_seconds=0.5)`` to start it configured.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from narrator.settings import Settings
from tests.fakes.comfyui import FakeComfy

ROOT = Path(__file__).resolve().parents[2]
TRACES = ROOT / "tests" / "comfy" / "traces"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "fake_comfy(**config): settings for the fake_comfy fixture")


@pytest.fixture
def fake_comfy(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FakeComfy]:
    marker = request.node.get_closest_marker("fake_comfy")
    config = dict(marker.kwargs) if marker else {}
    with FakeComfy(tmp_path / "comfyui", **config) as fake:
        yield fake


@pytest.fixture
def comfy_settings(fake_comfy: FakeComfy) -> Settings:
    """Settings for an engine on the fake, with a deadline short enough for failing tests to end quickly."""
    return Settings(comfy_url=fake_comfy.url, comfy_timeout=10.0, verify="off")


@dataclass
class FakeProcess:
    """The fake as a separate process (for workers in other processes); steer it over HTTP."""

    url: str
    proc: subprocess.Popen[str]

    def configure(self, **changes: object) -> None:
        httpx.post(f"{self.url}/_fake/config", json=changes, timeout=5).raise_for_status()

    def stats(self) -> dict[str, object]:
        return dict(httpx.get(f"{self.url}/_fake/stats", timeout=5).json())


def start_fake_process(port: int, root: Path, synth_seconds: float = 0.0, timeout: float = 15.0) -> FakeProcess:
    cmd = [sys.executable, "-m", "tests.fakes.comfyui", "--port", str(port), "--root", str(root),
           "--synth-seconds", str(synth_seconds)]
    root.mkdir(parents=True, exist_ok=True)
    log = root / "fake-comfyui.log"  # a file, not a pipe: a full pipe would stall the server
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"fake ComfyUI exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/system_stats", timeout=1).status_code == 200:
                return FakeProcess(url, proc)
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"fake ComfyUI on port {port} did not answer within {timeout} s")


@pytest.fixture
def fake_comfy_process(tmp_path: Path) -> Iterator[FakeProcess]:
    from tests.support.procs import free_port

    fake = start_fake_process(free_port(), tmp_path / "comfyui-proc")
    try:
        yield fake
    finally:
        fake.proc.terminate()
        try:
            fake.proc.wait(10)
        except subprocess.TimeoutExpired:
            fake.proc.kill()
            fake.proc.wait(5)


@pytest.fixture
def fake_comfy_processes(tmp_path: Path) -> Iterator[Callable[..., list[FakeProcess]]]:
    """A factory: ``start(n, synth_seconds=0.5)`` -> n fakes, each in its own process, all stopped after the test."""
    from tests.support.procs import free_port

    started: list[FakeProcess] = []

    def start(n: int, synth_seconds: float = 0.0) -> list[FakeProcess]:
        batch = [
            start_fake_process(free_port(), tmp_path / f"comfyui-{len(started) + i}", synth_seconds) for i in range(n)
        ]
        started.extend(batch)
        return batch

    try:
        yield start
    finally:
        stop_fakes(started)


def stop_fakes(fakes: list[FakeProcess]) -> None:
    """Terminate fake ComfyUI processes together; kill any that do not exit."""
    for fake in fakes:
        fake.proc.terminate()
    for fake in fakes:
        try:
            fake.proc.wait(10)
        except subprocess.TimeoutExpired:
            fake.proc.kill()
            fake.proc.wait(5)


def load_trace(name: str) -> object:
    return json.loads((TRACES / name).read_text())
