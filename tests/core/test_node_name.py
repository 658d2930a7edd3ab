"""A worker's node name: a given name qualified with the host, or the lowest slot on this host no live process holds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from narrator.errors import InvalidRequest, PermanentError
from narrator.ops import node_name
from tests.support.procs import ROOT


@pytest.mark.parametrize(
    ("given", "full"),
    [
        ("gpu0", "gpu0@box"),  # no host: this one's
        ("  gpu0 ", "gpu0@box"),
        ("gpu-worker.1_a", "gpu-worker.1_a@box"),
        ("gpu0@other-host", "gpu0@other-host"),  # a full name stays as given
        ("gpu0@gpu-worker-0.local", "gpu0@gpu-worker-0.local"),
    ],
)
def test_a_given_name_is_qualified_with_the_host(given: str, full: str) -> None:
    assert node_name.qualify(given, "box") == full


@pytest.mark.parametrize(
    ("given", "field", "says"),
    [
        ("", "--name", "the name"),
        ("@box", "--name", "the name"),
        ("gpu0@", "NARRATOR_WORKER_NAME", "the host"),
        ("gpu 0", "--name", "the name"),
        ("gpu0@a@b", "--name", "the host"),
        ("-gpu", "--name", "the name"),  # reads as an option on a command line
        ("gpu%h", "--name", "the name"),  # Celery would expand it: the name would not be what was asked for
    ],
)
def test_a_bad_name_names_the_field(given: str, field: str, says: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        node_name.qualify(given, "box", field)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: {given!r} is not a worker name: {says}")


@pytest.mark.parametrize(
    ("env", "uid", "folder"),
    [
        ({"XDG_RUNTIME_DIR": "/run/user/1000"}, 1000, "/run/user/1000/narrator-workers"),
        ({}, 1000, "/tmp/narrator-workers-1000"),  # containers: no session, a per-user folder in /tmp
        ({"XDG_RUNTIME_DIR": ""}, 0, "/tmp/narrator-workers-0"),
    ],
)
def test_the_slot_folder_is_per_user(env: dict[str, str], uid: int, folder: str) -> None:
    assert node_name.runtime_dir(env, uid) == Path(folder)


@pytest.mark.parametrize(
    ("given", "field", "kind", "name", "slotted"),
    [
        ("gpu-a", "--name", "gpu", "gpu-a@box", False),
        ("cpu@elsewhere", "NARRATOR_WORKER_NAME", "cpu", "cpu@elsewhere", False),
        ("", "--name", "gpu", "gpu-0@box", True),
        ("", "--name", "all", "all-0@box", True),
    ],
)
def test_a_worker_is_named_or_slotted(
    tmp_path: Path, given: str, field: str, kind: str, name: str, slotted: bool
) -> None:
    got, slot = node_name.for_worker(given, field, kind, "box", tmp_path / "slots")
    assert got == name
    assert (slot is not None) == slotted
    if slot is not None:
        slot.release()


def test_live_holders_keep_their_slots_and_a_freed_slot_is_taken_again(tmp_path: Path) -> None:
    folder = tmp_path / "slots"
    first = node_name.claim_slot(folder, "gpu", "box")
    second = node_name.claim_slot(folder, "gpu", "box")
    cpu = node_name.claim_slot(folder, "cpu", "box")  # kinds count apart
    assert (first.name, second.name, cpu.name) == ("gpu-0@box", "gpu-1@box", "cpu-0@box")
    first.release()  # the first worker's life ends
    again = node_name.claim_slot(folder, "gpu", "box")
    assert again.name == "gpu-0@box"  # its restart gets its name back; gpu-1 is still held
    assert node_name.claim_slot(folder, "gpu", "box").name == "gpu-2@box"
    assert oct(folder.stat().st_mode & 0o777) == oct(0o700)


def test_every_slot_held_is_an_error_naming_the_way_out(tmp_path: Path) -> None:
    held = [node_name.claim_slot(tmp_path / "slots", "gpu", "box", max_slots=2) for _ in range(2)]
    with pytest.raises(PermanentError, match="all 2 gpu worker slots .* held by live workers.*--name"):
        node_name.claim_slot(tmp_path / "slots", "gpu", "box", max_slots=2)
    assert [s.index for s in held] == [0, 1]


def test_a_folder_of_another_kind_is_refused(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "slots").symlink_to(tmp_path / "real")  # e.g. planted in /tmp by someone else
    with pytest.raises(PermanentError, match="is not a folder of this user's"):
        node_name.claim_slot(tmp_path / "slots", "gpu", "box")


HOLD = (
    "import sys; from pathlib import Path; from narrator.ops import node_name; "
    "slot = node_name.claim_slot(Path(sys.argv[1]), 'gpu', 'box'); print(slot.name, flush=True); "
    "sys.stdin.read()"
)


@pytest.mark.integration
def test_a_slot_held_by_a_process_killed_with_sigkill_is_free_again(tmp_path: Path) -> None:
    """The lock dies with its process however it ends: no stale file to clean up after SIGKILL."""
    folder = tmp_path / "slots"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], cwd=ROOT, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "gpu-0@box"
        mine = node_name.claim_slot(folder, "gpu", "box")
        assert mine.name == "gpu-1@box"  # the holder is alive: its slot is not free
        mine.release()
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
        assert node_name.claim_slot(folder, "gpu", "box").name == "gpu-0@box"
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)
