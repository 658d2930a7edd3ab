"""Ask a ComfyUI server what it has: ``/system_stats``, ``/object_info``, ``/models/{folder}``.

The answers feed :mod:`narrator.comfy.readiness`. Every call shares one deadline;
a server that cannot be reached raises :class:`~narrator.errors.EngineUnavailable`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..models import ModelSpec
from .client import ClientConfig, ComfyClient, Deadline
from .readiness import ServerView
from .system import SystemStats, parse_system_stats


@dataclass(frozen=True)
class Survey:
    url: str
    stats: SystemStats
    view: ServerView


def weight_folders(specs: Iterable[ModelSpec]) -> list[str]:
    """The model folders (``tts``, ...) the specs' ``[weights]`` live in."""
    return sorted({s.weights.folder for s in specs if s.weights is not None})


def survey(client: ComfyClient, folders: Iterable[str], deadline: Deadline) -> Survey:
    stats = parse_system_stats(client.system_stats(deadline))
    info = client.object_info(deadline)
    listings = {folder: client.models(folder, deadline) for folder in sorted(set(folders))}
    return Survey(client.base_url, stats, ServerView(info, listings))


def survey_url(url: str, specs: Iterable[ModelSpec], timeout: float) -> Survey:
    """Survey the server at ``url`` for these models, within ``timeout`` seconds in all."""
    client = ComfyClient(url, ClientConfig(request_timeout=min(30.0, timeout), connect_timeout=min(5.0, timeout)))
    try:
        return survey(client, weight_folders(specs), Deadline(timeout))
    finally:
        client.close()
