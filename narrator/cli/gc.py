"""``narrator gc`` (expire old jobs and cache from storage) and ``narrator prune-comfy``
(bound ComfyUI's output and voice folders). Parse, call narrator.ops, print."""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path
from typing import Any

from ..errors import EngineUnavailable, InvalidRequest, NarratorError
from ..ops import gc, prune
from ..settings import Settings
from ..storage import open_store

DAY = 86400.0
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.IGNORECASE)
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": DAY, "w": 7 * DAY}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)
_BYTES = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def register(sub: Any) -> None:
    """Add ``gc`` and ``prune-comfy`` to an argparse subparsers object."""
    p = sub.add_parser("gc", help="delete jobs that ended, and cache entries, older than a cutoff")
    p.add_argument(
        "--older-than",
        help="age cutoff: 7d, 12h, 30m, 90s (w, d, h, m, s); default NARRATOR_JOB_RETENTION (7d), the results' life",
    )
    p.add_argument(
        "--unfinished-after", default="1d",
        help="a job that has not ended goes only when idle this long too (default 1d; never less than --older-than)",
    )
    p.add_argument("--dry-run", action="store_true", help="say what would go; delete nothing")
    p.add_argument("--json", action="store_true", help="print the counts as JSON")
    p.set_defaults(func=cmd_gc)

    q = sub.add_parser("prune-comfy", help="bound ComfyUI's folders: delete old files, oldest first past a size")
    q.add_argument("--dir", action="append", type=Path, required=True, help="a folder to prune (repeat)")
    q.add_argument("--max-age", help="delete files older than this: 1d, 6h, …")
    q.add_argument("--max-bytes", help="then the oldest until the folders hold at most this: 20G, 500M, …")
    q.add_argument("--min-age", help="never a file younger than this (default: NARRATOR_CHUNK_TIME_LIMIT)")
    q.add_argument("--comfy-url", help="keep every file a queued or running prompt of this ComfyUI names")
    q.add_argument("--dry-run", action="store_true", help="say what would go; delete nothing")
    q.set_defaults(func=cmd_prune)


def cmd_gc(args: argparse.Namespace, settings: Settings) -> int:
    # By default storage keeps a job exactly as long as the result backend keeps its results.
    older = float(settings.job_retention)
    if args.older_than is not None:
        older = parse_duration(args.older_than, "--older-than")
    unfinished = parse_duration(args.unfinished_after, "--unfinished-after")
    policy = gc.Policy(older_than=older, unfinished_after=unfinished, floor=float(settings.chunk_time_limit))
    report = gc.collect(open_store(settings), time.time(), policy, dry_run=args.dry_run)
    if args.json:
        print(json.dumps({**report.to_json(), "dry_run": args.dry_run}))
    else:
        print(describe_gc(report, args.dry_run))
    return 0


def describe_gc(report: gc.Report, dry_run: bool) -> str:
    verb = "would expire" if dry_run else "expired"
    jobs = sum(report.jobs.values())
    states = ", ".join(f"{state} {n}" for state, n in sorted(report.jobs.items()))
    lines = [
        f"{verb} {jobs} jobs" + (f" ({states})" if states else "")
        + f": {report.job_objects} objects, {human_bytes(report.job_bytes)}",
        f"{verb} {report.cache_entries} cache entries: {human_bytes(report.cache_bytes)}",
        f"kept {report.kept_jobs} jobs (newer than the cutoff, or not ended and not idle long enough)",
    ]
    return "\n".join(lines)


def cmd_prune(args: argparse.Namespace, settings: Settings) -> int:
    max_age = parse_duration(args.max_age, "--max-age") if args.max_age else None
    max_bytes = parse_size(args.max_bytes, "--max-bytes") if args.max_bytes else None
    if max_age is None and max_bytes is None:
        raise InvalidRequest("give --max-age, --max-bytes or both", field="prune-comfy")
    min_age = parse_duration(args.min_age, "--min-age") if args.min_age else float(settings.chunk_time_limit)
    policy = prune.Policy(max_age=max_age, max_bytes=max_bytes, min_age=min_age)
    files = prune.scan(args.dir)
    protected = prune.in_use(files, _queued_names(args.comfy_url)) if args.comfy_url else frozenset()
    chosen = prune.plan(files, time.time(), policy, protected)
    if args.dry_run:
        deleted, freed = len(chosen.delete), chosen.freed_bytes
    else:
        deleted, freed = prune.apply(chosen)
    verb = "would delete" if args.dry_run else "deleted"
    print(
        f"{verb} {deleted} files, {human_bytes(freed)}; kept {chosen.kept} files, {human_bytes(chosen.kept_bytes)}"
        + (f" ({len(protected)} in use by queued prompts)" if protected else "")
    )
    if chosen.over_budget:
        print("still over --max-bytes: the rest is younger than --min-age or in use")
    return 0


def _queued_names(url: str) -> frozenset[str]:
    from ..comfy.client import ClientConfig, ComfyClient, Deadline

    client = ComfyClient(url, ClientConfig(request_timeout=10.0, connect_timeout=5.0))
    try:
        return prune.referenced(client.queue(Deadline(15.0)))
    except EngineUnavailable as exc:
        # Without the queue a voice a waiting prompt needs could go: prune nothing this time.
        raise NarratorError(f"not pruning: cannot read ComfyUI's queue: {exc}") from exc
    finally:
        client.close()


def parse_duration(text: str, name: str) -> float:
    match = _DURATION.match(text or "")
    if not match:
        raise InvalidRequest(f"{text!r} is not a duration (7d, 12h, 30m, 90s)", field=name)
    return float(match.group(1)) * _SECONDS[match.group(2).lower()]


def parse_size(text: str, name: str) -> int:
    match = _SIZE.match(text or "")
    if not match:
        raise InvalidRequest(f"{text!r} is not a size (20G, 500M, 1024; K, M, G, T are powers of 1024)", field=name)
    return int(float(match.group(1)) * _BYTES[match.group(2).lower()])


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")
