"""``narrator health [--comfy]``: is this machine's worker ready? For Docker's HEALTHCHECK and probes.

Exit 0 only when the worker's ``NARRATOR_READY_FILE`` says ready and its process runs
(and, with ``--comfy``, ComfyUI at ``NARRATOR_COMFY_URL`` answers ``/system_stats``);
1 otherwise, with one line saying why.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..errors import EngineUnavailable
from ..ops import worker_state
from ..settings import Settings


def register(sub: Any) -> None:
    """Add the ``health`` command to an argparse subparsers object."""
    health = sub.add_parser(
        "health", help="exit 0 when this machine's worker is warmed up and consuming (NARRATOR_READY_FILE)"
    )
    health.add_argument("--comfy", action="store_true", help="also require ComfyUI (NARRATOR_COMFY_URL) to answer")
    health.add_argument("--file", type=Path, help="the worker's ready file (default: NARRATOR_READY_FILE)")
    health.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for ComfyUI's answer")
    health.set_defaults(func=check_health)


def check_health(args: argparse.Namespace, settings: Settings) -> int:
    path = args.file or (Path(settings.ready_file) if settings.ready_file else None)
    if path is None:
        return _unhealthy("NARRATOR_READY_FILE is not set, so no worker reports its state")
    status = worker_state.read(path)
    if not status.ready:
        return _unhealthy(f"{status.describe()} [{path}]")
    line = status.describe()
    if args.comfy:
        problem = _comfy_problem(settings.comfy_url, args.timeout)
        if problem:
            return _unhealthy(f"{line}, but {problem}")
        line += f"; ComfyUI at {settings.comfy_url} answers"
    print(f"healthy: {line}")
    return 0


def _comfy_problem(url: str, timeout: float) -> str:
    from ..comfy.client import ClientConfig, ComfyClient, Deadline

    client = ComfyClient(url, ClientConfig(request_timeout=timeout, connect_timeout=min(timeout, 5.0)))
    try:
        client.system_stats(Deadline(timeout))
    except EngineUnavailable as exc:
        return str(exc)
    finally:
        client.close()
    return ""


def _unhealthy(reason: str) -> int:
    print(f"unhealthy: {reason}", file=sys.stderr)
    return 1
