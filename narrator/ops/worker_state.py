"""A worker's state in a small file that other processes read: health checks, the RunPod handler.

The worker's main process writes ``NARRATOR_READY_FILE`` as it starts (``starting``),
once it has warmed up and consumes tasks (``ready``), or when its warm-up failed
(``failed``, with the reason, just before it exits); it removes the file when it shuts
down. The file names the writer's pid, so a worker killed outright is not "ready":
:func:`read` checks that the process still runs.

Plain files and ``os`` calls only: no Celery, no settings.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import WorkerNotReady

log = logging.getLogger(__name__)

STARTING = "starting"
READY = "ready"
FAILED = "failed"
ABSENT = "absent"
"""No file: the worker has not started (or stopped cleanly)."""
DEAD = "dead"
"""The file names a process that no longer runs."""


@dataclass(frozen=True)
class Status:
    state: str
    pid: int = 0
    hostname: str = ""
    error: str = ""
    since: float = 0.0
    """When the worker wrote this state (``time.time()``)."""

    @property
    def ready(self) -> bool:
        return self.state == READY

    @property
    def final(self) -> bool:
        """The worker will not become ready without a restart."""
        return self.state in (FAILED, DEAD)

    def describe(self) -> str:
        who = f"worker {self.hostname} (pid {self.pid})" if self.hostname else f"worker pid {self.pid}"
        if self.state == READY:
            return f"{who} is ready"
        if self.state == STARTING:
            return f"{who} is still starting (warming up)"
        if self.state == FAILED:
            return f"{who} failed to start: {self.error}"
        if self.state == DEAD:
            return f"{who} is no longer running (it was {self.error or 'starting'})"
        return "no worker state (the worker has not started yet, or it stopped)"


def write(path: Path, state: str, hostname: str = "", error: str = "") -> None:
    """Record this process's state, atomically (a reader never sees half a file)."""
    pid = os.getpid()
    body: dict[str, object] = {"state": state, "pid": pid, "started": _started(pid), "hostname": hostname,
                               "since": time.time()}
    if error:
        body["error"] = error
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(body))
    os.replace(tmp, path)


def remove(path: Path) -> None:
    """Take this process's file away; a file another process wrote stays."""
    try:
        owner = json.loads(path.read_text()).get("pid")
    except (OSError, ValueError, AttributeError):
        return
    if owner == os.getpid():
        path.unlink(missing_ok=True)


def read(path: Path) -> Status:
    """The worker's state as it stands now."""
    try:
        body = json.loads(path.read_text())
        started = body.get("started")
        status = Status(
            state=str(body["state"]),
            pid=int(body["pid"]),
            hostname=str(body.get("hostname", "")),
            error=str(body.get("error", "")),
            since=float(body.get("since", 0.0)),
        )
    except FileNotFoundError:
        return Status(ABSENT)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return Status(FAILED, error=f"{path} is unreadable: {exc}")
    if status.state in (STARTING, READY) and not _running(status.pid, started):
        return Status(DEAD, status.pid, status.hostname, error=status.state, since=status.since)
    return status


def wait(path: Path, timeout: float, poll: float = 0.2) -> Status:
    """Block until the worker is ready; :class:`WorkerNotReady` when it failed, died, or the deadline passed.

    A failed or dead state already there when the wait begins may be a leftover of an
    earlier worker (a restarted container): it ends the wait only at the deadline, unless
    a new worker writes over it first.
    """
    deadline = time.monotonic() + timeout
    status = read(path)
    leftover = status if status.final else None
    if leftover is not None:
        log.info("a worker state from before this wait", extra={"ready_file": str(path), "state": status.state})
    last = ""
    while True:
        if status.ready:
            return status
        if status.final and status != leftover:
            raise WorkerNotReady(status.describe())
        if status.state != last:
            log.info("waiting for the worker", extra={"ready_file": str(path), "state": status.state})
            last = status.state
        if time.monotonic() >= deadline:
            raise WorkerNotReady(f"not ready within {timeout:g} s: {status.describe()} ({path})")
        time.sleep(poll)
        status = read(path)


def _running(pid: int, started: object = None) -> bool:
    """Whether ``pid`` runs and is the process that wrote the file (``started`` tells a reused pid apart)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process, but it exists
    stat = _stat(pid)
    if stat is None:
        return True  # no /proc: the pid is all there is to go by
    # A process that has exited but was not reaped yet is a zombie: not running.
    if stat[0] in ("Z", "X"):
        return False
    return started is None or str(started) == stat[19]


def _started(pid: int) -> str | None:
    """When the process started (clock ticks since boot, /proc/PID/stat field 22), if known."""
    stat = _stat(pid)
    return stat[19] if stat is not None else None


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat from field 3 (state) on; the command name before it may hold spaces."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields if len(fields) > 19 else None
