"""A worker's Celery node name: the one it is given, or a slot on this host no live worker holds.

Recovery (tasks/recovery.py) requeues what a node's previous life was running, keyed by
node name, so two live workers must never share one. A default name is
``<kind>-<n>@<host>`` where ``n`` is the lowest slot whose lock file this process can
take: the lock (``flock``) lives as long as the process that took it, and its pool
children, which inherit it, so a worker restarted after SIGKILL finds its old slot free
and gets its old name back, while a live worker keeps its own. The lock files sit in a
per-user runtime folder, so they name slots on this host only; across hosts the host
part of the name keeps names apart.
"""

from __future__ import annotations

import fcntl
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidRequest, PermanentError

#: A node name's parts: what Celery, Flower and log lines carry without quoting.
_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
#: More workers of one kind than this on one host is a runaway restart loop, not a deployment.
MAX_SLOTS = 64


@dataclass(frozen=True)
class Slot:
    """A default node name and the open lock file that keeps it this process's."""

    index: int
    name: str
    fd: int

    def release(self) -> None:
        os.close(self.fd)


def qualify(name: str, host: str, field: str = "--name") -> str:
    """``name`` as a full node name: without ``@`` it becomes ``name@host``."""
    worker, at, where = name.strip().partition("@")
    where = where if at else host
    for part, what in ((worker, "the name"), (where, "the host")):
        if not _PART.match(part):
            raise InvalidRequest(
                f"{name!r} is not a worker name: {what} must be letters, digits, '.', '_' or '-' "
                "(NAME or NAME@HOST)", field=field)
    return f"{worker}@{where}"


def for_worker(given: str, field: str, kind: str, host: str, folder: Path) -> tuple[str, Slot | None]:
    """The node name a worker starts under: ``given`` (named by ``field`` in errors), else a slot's."""
    if given:
        return qualify(given, host, field), None
    slot = claim_slot(folder, kind, host)
    return slot.name, slot


def default_name(kind: str, index: int, host: str) -> str:
    return qualify(f"{kind}-{index}", host, field="host")


def lock_file(folder: Path, kind: str, index: int) -> Path:
    return folder / f"{kind}-{index}.lock"


def runtime_dir(env: Mapping[str, str], uid: int, tmp: str = "/tmp") -> Path:
    """Where this user's slot locks live: in ``$XDG_RUNTIME_DIR``, else a private folder in ``tmp``."""
    base = env.get("XDG_RUNTIME_DIR", "")
    if base:
        return Path(base) / "narrator-workers"
    return Path(tmp) / f"narrator-workers-{uid}"


def claim_slot(folder: Path, kind: str, host: str, max_slots: int = MAX_SLOTS) -> Slot:
    """Take the lowest free slot of ``kind``; keep the returned :class:`Slot` open for the process's life."""
    _private_folder(folder)
    for index in range(max_slots):
        fd = os.open(lock_file(folder, kind, index), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return Slot(index, default_name(kind, index, host), fd)
    raise PermanentError(f"all {max_slots} {kind} worker slots in {folder} are held by live workers: "
                         "stop one, or give this worker a name with --name")


def _private_folder(folder: Path) -> None:
    # A folder in /tmp another user made first could hold our slots hostage: own it or refuse it.
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        info = folder.lstat()
    except OSError as exc:
        raise PermanentError(f"cannot make the worker slot folder {folder}: {exc}") from exc
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise PermanentError(f"the worker slot folder {folder} is not a folder of this user's; "
                             "set XDG_RUNTIME_DIR or give the worker a name with --name")
