"""``narrator prune-comfy`` on real folders: ages, the size bound, symlinks, and the files a
queued or running prompt of a (fake) ComfyUI still needs; then the GPU image's script
running it in the background beside a stand-in ComfyUI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from narrator.cli import main
from narrator.engines.base import SynthesisInput, Voice
from narrator.engines.comfyui import ComfyEngine
from narrator.settings import Settings
from tests.comfy.test_engine import model, wav
from tests.fakes.comfyui import FakeComfy
from tests.support.procs import ROOT, free_port, wait_until

H = 3600.0


def put(path: Path, size: int, age_hours: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    when = time.time() - age_hours * H
    os.utime(path, (when, when))
    return path


def names(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() or p.is_symlink()}


def test_prune_by_age_then_size_oldest_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, voices = tmp_path / "output", tmp_path / "input" / "narrator"
    put(out / "narrator" / "chunk_00001_.flac", 1000, 50)
    put(out / "narrator" / "chunk_00002_.flac", 1000, 20)
    put(out / "narrator" / "chunk_00003_.flac", 1000, 10)
    put(out / "narrator" / "chunk_00004_.flac", 1000, 0.01)  # just written: its chunk may still fetch it
    put(voices / "aa.wav", 500, 30)
    outside = put(tmp_path / "elsewhere" / "keep.wav", 10, 100)
    (out / "link.wav").symlink_to(outside)
    args = ["prune-comfy", "--dir", str(out), "--dir", str(voices), "--max-age", "1d", "--max-bytes", "500"]

    assert main([*args, "--dry-run"]) == 0
    assert capsys.readouterr().out.startswith("would delete 4 files, 3.4 KiB; kept 1 files, 1000 B")
    assert len(names(out)) == 5

    assert main(args) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("deleted 4 files, 3.4 KiB; kept 1 files, 1000 B")
    assert "still over --max-bytes" in printed  # what is left is younger than the chunk limit
    assert names(out) == {"narrator/chunk_00004_.flac", "link.wav"}
    assert names(voices) == set() and voices.is_dir()  # folders stay: ComfyUI may be saving into them
    assert outside.exists()  # a symlink is neither followed nor counted
    print(printed)


def test_prune_needs_a_limit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prune-comfy", "--dir", str(tmp_path)]) == 2
    assert "prune-comfy: give --max-age, --max-bytes or both" in capsys.readouterr().err
    assert main(["prune-comfy", "--dir", str(tmp_path), "--max-bytes", "lots"]) == 2
    assert "--max-bytes: 'lots' is not a size" in capsys.readouterr().err


def test_unreadable_queue_prunes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = put(tmp_path / "out" / "old.flac", 10, 100)
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["prune-comfy", "--dir", str(tmp_path / "out"), "--max-age", "1h", "--comfy-url", url]) == 1
    assert "not pruning: cannot read ComfyUI's queue" in capsys.readouterr().err
    assert old.exists()


@pytest.mark.integration
def test_voices_of_queued_and_running_prompts_stay(fake_comfy: FakeComfy, capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings(comfy_url=fake_comfy.url, comfy_timeout=30.0)
    first, second = ComfyEngine(model("vibevoice-large"), settings), ComfyEngine(model("vibevoice-large"), settings)
    running, waiting, unused = Voice(wav(220)), Voice(wav(330)), Voice(wav(440))
    first.synthesize(SynthesisInput("Speaker 1: An earlier job.", voices={1: unused}))
    fake_comfy.configure(hold=True)
    inputs, outputs = fake_comfy.ctx.input_dir / "narrator", fake_comfy.ctx.output_dir
    with ThreadPoolExecutor(2) as pool:
        held = pool.submit(first.synthesize, SynthesisInput("Speaker 1: Held in its node.", voices={1: running}))
        wait_until(lambda: fake_comfy.running is not None, 20, "the first prompt to run")
        queued = pool.submit(second.synthesize, SynthesisInput("Speaker 1: Waiting its turn.", voices={1: waiting}))
        wait_until(lambda: len(fake_comfy.pending) == 1, 20, "the second prompt to wait in the queue")
        for path in [*inputs.iterdir(), *outputs.rglob("*.flac")]:
            os.utime(path, (time.time() - 2 * 24 * H,) * 2)  # everything looks two days old

        args = ["prune-comfy", "--dir", str(outputs), "--dir", str(inputs), "--max-age", "1d"]
        assert main([*args, "--comfy-url", fake_comfy.url]) == 0
        printed = capsys.readouterr().out
        assert "in use by queued prompts" in printed
        kept = names(inputs)
        assert {f"{running.digest}.wav", f"{waiting.digest}.wav"} <= kept
        assert f"{unused.digest}.wav" not in kept
        assert list(outputs.rglob("*.flac")) == []

        fake_comfy.configure(hold=False)
        for future in (held, queued):  # the waiting prompt loads its voice only now: it must still be there
            audio = future.result(30)
            assert audio.duration > 0.3 and float(np.abs(audio.samples).max()) > 0.1
    first.close()
    second.close()
    print(printed)


STAND_IN = """\
import argparse, sys
from pathlib import Path
sys.path.insert(0, {root!r})
from tests.fakes.comfyui import main
p = argparse.ArgumentParser()
p.add_argument("--listen"); p.add_argument("--port"); p.add_argument("--disable-auto-launch", action="store_true")
a = p.parse_args()
main(["--host", a.listen, "--port", a.port, "--root", str(Path(__file__).parent)])
"""


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.integration
def test_gpu_image_prunes_beside_comfyui_and_stops_with_it(tmp_path: Path) -> None:
    comfy = tmp_path / "comfyui"
    comfy.mkdir()
    (comfy / "main.py").write_text(STAND_IN.format(root=str(ROOT)))
    old_chunk = put(comfy / "output" / "narrator" / "chunk_00001_.flac", 100, 30)
    old_voice = put(comfy / "input" / "narrator" / "aa.wav", 100, 30)
    new_chunk = put(comfy / "output" / "narrator" / "chunk_00002_.flac", 100, 1)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NARRATOR_", "COMFY_"))}
    env.update(
        COMFY_PYTHON=sys.executable, COMFY_MAIN=str(comfy / "main.py"), COMFY_PORT=str(free_port()),
        VENV_BIN=str(Path(sys.executable).parent), COMFY_PRUNE_INTERVAL="0.5", COMFY_PRUNE_MAX_AGE="1d",
    )
    log = tmp_path / "start-gpu.log"
    with log.open("w") as out:
        proc = subprocess.Popen(["bash", str(ROOT / "docker" / "start-gpu.sh"), "comfyui"], env=env, cwd=tmp_path,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until(lambda: not old_chunk.exists() and not old_voice.exists(), 60, f"a prune round ({log})")
        assert new_chunk.exists()
        assert proc.poll() is None  # ComfyUI runs on
        assert "deleted 2 files" in log.read_text()
        proc.send_signal(signal.SIGTERM)  # the script exec'd ComfyUI: this is ComfyUI stopping
        proc.wait(20)
        wait_until(lambda: not group_alive(proc.pid), 30, "the prune loop to end with ComfyUI")
    finally:
        if group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
    print(log.read_text()[-500:])


def test_prune_loop_can_be_turned_off() -> None:
    script = (ROOT / "docker" / "start-gpu.sh").read_text()
    body = script[script.index("comfyui() {"):]
    body = body[: body.index("\n}\n")]
    assert 'if [ "${COMFY_PRUNE_INTERVAL:-600}" != 0 ]; then' in body and "prune_comfy" in body
    assert body.index("prune_comfy") < body.index("exec ")  # started before ComfyUI replaces the shell
