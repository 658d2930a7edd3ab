"""Keep ComfyUI's folders bounded (``narrator prune-comfy``, run on a schedule by the GPU image).

ComfyUI keeps every chunk it saves in ``output/`` and every voice narrator uploads in
``input/narrator/``, and has no API to delete either: the files are pruned where they live.
A pure planner (:func:`plan`) picks what to delete from files (path, size, mtime), a clock
and a policy; the edges scan folders, read ComfyUI's queue and unlink.

What keeps a running job safe:

- an output file is downloaded right after its prompt ends; nothing younger than
  ``min_age`` (the chunk time limit) is deleted, so a chunk still being fetched keeps its file;
- a voice is uploaded once per worker process and reused for hours, so its age says nothing:
  any file a queued or running prompt names (:func:`referenced`) is kept. A voice deleted
  between two prompts is uploaded again by the engine when ComfyUI refuses the next one.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileEntry:
    path: str
    size: int
    mtime: float


@dataclass(frozen=True)
class Policy:
    max_age: float | None
    """Seconds: older files go. None: no age limit."""
    max_bytes: int | None
    """The folders' total size to get under, oldest first. None: no size limit."""
    min_age: float
    """Seconds: a file younger than this is never deleted, whatever the other two say."""


@dataclass(frozen=True)
class Plan:
    delete: tuple[FileEntry, ...]
    """Oldest first."""
    kept: int
    kept_bytes: int
    over_budget: bool
    """Still above ``max_bytes``: what is left is too young or in use."""

    @property
    def freed_bytes(self) -> int:
        return sum(f.size for f in self.delete)


def plan(files: Iterable[FileEntry], now: float, policy: Policy, protected: frozenset[str] = frozenset()) -> Plan:
    """Which files to delete: every one past ``max_age``, then the oldest until under ``max_bytes``;
    never one younger than ``min_age`` nor one in ``protected`` (paths)."""
    ordered = sorted(files, key=lambda f: (f.mtime, f.path))
    total = sum(f.size for f in ordered)
    doomed: list[FileEntry] = []
    for entry in ordered:
        age = now - entry.mtime
        if age < policy.min_age or entry.path in protected:
            continue
        too_old = policy.max_age is not None and age > policy.max_age
        too_big = policy.max_bytes is not None and total > policy.max_bytes
        if too_old or too_big:
            doomed.append(entry)
            total -= entry.size
    return Plan(
        delete=tuple(doomed),
        kept=len(ordered) - len(doomed),
        kept_bytes=total,
        over_budget=policy.max_bytes is not None and total > policy.max_bytes,
    )


def referenced(queue: object) -> frozenset[str]:
    """Every string in ComfyUI's ``GET /queue`` answer: the running and pending prompts' inputs
    (a LoadAudio's ``narrator/<sha256>.wav`` among them). Walked whole, so the item layout
    (which differs between ComfyUI versions) does not matter."""
    found: set[str] = set()
    stack = [queue]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            name = value.strip().lstrip("/")
            if name and "\n" not in name:
                found.add(name)
        elif isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list | tuple):
            stack.extend(value)
    return frozenset(found)


def in_use(files: Iterable[FileEntry], names: frozenset[str]) -> frozenset[str]:
    """Paths of files some name in ``names`` points at: ``names`` are relative to a folder
    ComfyUI serves (``narrator/x.wav`` under ``input/``), so a path matches by its tail."""
    hits = set()
    for entry in files:
        parts = entry.path.split("/")
        if any("/".join(parts[-k:]) in names for k in range(1, len(parts) + 1)):
            hits.add(entry.path)
    return frozenset(hits)


def scan(folders: Iterable[Path]) -> list[FileEntry]:
    """Regular files under ``folders`` (symlinks neither followed nor counted); a missing folder is empty."""
    return [entry for folder in folders for entry in _walk(folder)]


#: Files ComfyUI ships in its folders, not outputs of ours.
KEEP = frozenset({"_output_images_will_be_put_here"})


def _walk(folder: Path) -> Iterator[FileEntry]:
    for root, _dirs, names in os.walk(folder):
        for name in names:
            if name in KEEP:
                continue
            path = os.path.join(root, name)
            try:
                info = os.lstat(path)
            except FileNotFoundError:
                continue  # gone since the walk listed it
            if stat.S_ISREG(info.st_mode):
                yield FileEntry(Path(path).as_posix(), info.st_size, info.st_mtime)


def apply(chosen: Plan) -> tuple[int, int]:
    """Delete the plan's files; (files deleted, bytes freed). Folders stay: ComfyUI may be saving into them."""
    deleted = freed = 0
    for entry in chosen.delete:
        try:
            os.unlink(entry.path)
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("cannot delete", extra={"path": entry.path, "error": exc.strerror or str(exc)})
            continue
        deleted += 1
        freed += entry.size
    return deleted, freed
