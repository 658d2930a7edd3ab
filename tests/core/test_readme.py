"""The README's commands run as a user types them.

Every line of every ``sh`` block in README.md runs here, in order, in a shell like a
user's (a fresh folder holding the checkout's ``.venv`` and ``examples``, no NARRATOR_*
settings, the data folder in the test's own), except the lines in :data:`NOT_RUN`, each
of which needs what this machine has not (a GPU with ComfyUI) or is this suite itself.
The one change made to a command: the one-machine recipe's Redis port becomes a free one.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest
import soundfile as sf

from tests.support.procs import ROOT, free_port, wait_until

pytestmark = pytest.mark.integration

README = ROOT / "README.md"
NOT_RUN = {
    "make test": "the whole suite: this test is part of it",
    'narrator speak --model vibevoice-large --voice me.wav "Text" -o out.wav': "a ComfyUI server with a GPU",
}
RECIPE_PORT = "6390"


def sh_blocks() -> list[list[str]]:
    return [block.strip("\n").splitlines() for block in re.findall(r"```sh\n(.*?)```", README.read_text(), re.S)]


def command(line: str) -> str:
    return re.split(r"\s{2,}#", line, maxsplit=1)[0].strip()


def user_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NARRATOR_", "VIRTUAL_ENV"))}
    env["XDG_DATA_HOME"] = str(home / "data")  # where a job's files go by default, as for a user
    return env


def run_block(lines: list[str], folder: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """The lines as one bash script (stop at the first failure); its background jobs ended after."""
    for name in (".venv", "examples"):
        if not (folder / name).exists():
            (folder / name).symlink_to(ROOT / name)
    script = "set -euo pipefail\n" + "\n".join(lines) + "\n"
    # Files, not pipes: the block's background jobs (a terminal's, for a user) hold them open.
    out, err = folder / "block.out", folder / "block.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen(["bash", "-c", script], cwd=folder, env=user_env(folder), text=True,
                                stdout=stdout, stderr=stderr, start_new_session=True)
        try:
            proc.wait(timeout=timeout)
        finally:
            with_children_gone(proc.pid)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out.read_text(), err.read_text())


def with_children_gone(group: int) -> None:
    """SIGTERM the block's process group; SIGKILL what is left after workers' warm shutdown (10 s)."""
    try:
        os.killpg(group, signal.SIGTERM)
        wait_until(lambda: not group_alive(group), 10, "the README block's background jobs to stop")
    except ProcessLookupError:
        return
    except AssertionError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)


def group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def runnable(lines: list[str]) -> list[str]:
    return [line for line in lines if command(line) and command(line) not in NOT_RUN]


def test_every_command_line_is_run_or_named() -> None:
    blocks = sh_blocks()
    assert len(blocks) == 3, "a new sh block: give it a test below"
    everything = {command(line) for block in blocks for line in block if command(line)}
    assert set(NOT_RUN) <= everything, "a line named in NOT_RUN is gone from the README: drop it"


def test_quick_start_make_speak(tmp_path: Path) -> None:
    (quick, _, _) = sh_blocks()
    assert [command(line) for line in quick] == ["make speak", "make test"]
    out = tmp_path / "out.wav"
    # `make speak` as typed, from the checkout, its output put in this test's folder.
    run = subprocess.run(["make", "speak", f"OUT={out}"], cwd=ROOT, env=user_env(tmp_path), text=True,
                         capture_output=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    info = sf.info(str(out))
    assert info.samplerate == 22050 and info.duration > 200  # the whole example passage


def test_after_make_speak(tmp_path: Path) -> None:
    (_, after, _) = sh_blocks()
    run = run_block(runnable(after), tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    for name in ("out.flac", "out.wav", "chapter.wav"):
        assert sf.info(str(tmp_path / name)).duration > 0.5, name
    assert "usage: narrator speak" in run.stdout  # --help


def test_one_machine_recipe(tmp_path: Path) -> None:
    (_, _, recipe) = sh_blocks()
    assert any(RECIPE_PORT in line for line in recipe)
    port = str(free_port())
    run = run_block([line.replace(RECIPE_PORT, port) for line in runnable(recipe)], tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert sf.info(str(tmp_path / "hello.wav")).duration > 1.0
    status = run.stdout[run.stdout.rindex('{\n  "job_id"'):]
    assert '"state": "' in status and (tmp_path / "store" / "jobs").is_dir()
