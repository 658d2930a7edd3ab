"""``narrator runpod run|status|cancel|health|smoke``: a deployed RunPod endpoint, from a shell.

Parse, call :mod:`narrator.runpod.client`, format. Errors end as everywhere in the CLI: one
line on stderr, exit 1 (2 for invalid input, 130 for Ctrl-C, which cancels the remote job).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import httpx
from pydantic import ValidationError

from ..comfy.client import Deadline
from ..errors import FetchError, FetchUnavailable, InvalidRequest, RemoteJobFailed
from ..result import JobState, Progress
from ..runpod.client import RunPodClient
from ..runpod.client_smoke import SMOKE_INPUT, check
from ..runpod.client_types import COMPLETED, IN_PROGRESS, IN_QUEUE, RemoteJob
from ..settings import Settings
from . import _request_options, request_from_args
from .progress_bar import ProgressBar

QUEUE_TIMEOUT = 300.0
#: Beyond the job's own time-out: RunPod's bookkeeping, the result's upload and our polls.
GRACE_SECONDS = 60.0
SMOKE_TIMEOUT = 900.0
DOWNLOAD_TIMEOUT = 60.0


def register(sub: Any) -> None:
    p = sub.add_parser("runpod", help="submit to a deployed RunPod serverless endpoint; follow, cancel, smoke-test")
    commands = p.add_subparsers(dest="runpod_command", required=True)

    run = commands.add_parser("run", help="submit a request to an endpoint; prints the RunPod job id")
    _request_options(run)
    _endpoint(run)
    run.add_argument("--wait", action="store_true", help="follow the job with a progress bar and print its result")
    run.add_argument("-o", "--output", type=Path, help="write the audio here (implies --wait)")
    run.add_argument("--stream", action="store_true",
                     help="print each chunk's audio URL as it is ready (implies --wait)")
    _queue_timeout(run)
    run.set_defaults(func=cmd_run)

    for name, func, text in (("status", cmd_status, "show a RunPod job's status and output as JSON"),
                             ("cancel", cmd_cancel, "cancel a RunPod job")):
        p = commands.add_parser(name, help=text)
        p.add_argument("job_id", help="the RunPod job id (`narrator runpod run` printed it)")
        _endpoint(p)
        p.set_defaults(func=func)

    health = commands.add_parser("health", help="an endpoint's jobs and workers, as JSON")
    _endpoint(health)
    health.set_defaults(func=cmd_health)

    smoke = commands.add_parser("smoke", help="the deployment smoke test: a sample request, its WAV checked")
    _endpoint(smoke)
    smoke.add_argument("--timeout", type=float, default=SMOKE_TIMEOUT,
                       help=f"seconds for the whole test (default {SMOKE_TIMEOUT:g})")
    _queue_timeout(smoke)
    smoke.set_defaults(func=cmd_smoke)


def _endpoint(p: argparse.ArgumentParser) -> None:
    p.add_argument("--endpoint", required=True, metavar="ID", help="the RunPod endpoint id")


def _queue_timeout(p: argparse.ArgumentParser) -> None:
    p.add_argument("--queue-timeout", type=float, default=QUEUE_TIMEOUT, metavar="S",
                   help=f"cancel the job if no worker starts it within S seconds (default {QUEUE_TIMEOUT:g})")


# -- the commands -----------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    job_input = request_from_args(args)
    if args.stream:
        job_input["stream"] = True
    with RunPodClient.from_settings(args.endpoint, settings) as client:
        job = client.run(job_input)
        if not (args.wait or args.output or args.stream):
            print(job.id)
            return 0
        print(f"narrator: RunPod job {job.id} submitted to endpoint {args.endpoint}", file=sys.stderr)
        seconds = args.queue_timeout + (args.timeout or settings.job_timeout) + GRACE_SECONDS
        on_stream = _print_url if args.stream else None
        done = follow(client, job.id, Deadline(seconds), args.queue_timeout, on_stream=on_stream)
    if args.output:
        write_audio(done.output, args.output, args.endpoint)
    print(json.dumps(shown(done.output), indent=2))
    return 0


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    with RunPodClient.from_settings(args.endpoint, settings) as client:
        job = client.status(args.job_id)
    print(json.dumps({**job.to_json(), **({"output": shown(job.output)} if job.output is not None else {})}, indent=2))
    return 0


def cmd_cancel(args: argparse.Namespace, settings: Settings) -> int:
    with RunPodClient.from_settings(args.endpoint, settings) as client:
        job = client.cancel(args.job_id)
    print(f"narrator: RunPod job {job.id}: {job.status}", file=sys.stderr)
    return 0


def cmd_health(args: argparse.Namespace, settings: Settings) -> int:
    with RunPodClient.from_settings(args.endpoint, settings) as client:
        health = client.health()
    print(json.dumps(health.to_json(), indent=2))
    return 0


def cmd_smoke(args: argparse.Namespace, settings: Settings) -> int:
    with RunPodClient.from_settings(args.endpoint, settings) as client:
        deadline = Deadline(args.timeout)
        job = client.run(SMOKE_INPUT, deadline=deadline)
        print(f"narrator: smoke test job {job.id} submitted to endpoint {args.endpoint}", file=sys.stderr)
        done = follow(client, job.id, deadline, args.queue_timeout)
    verdict = check(done)
    if not verdict.passed:
        print(f"narrator: smoke test FAILED on endpoint {args.endpoint} (job {job.id}): {verdict.summary}",
              file=sys.stderr)
        return 1
    print(f"smoke test passed on endpoint {args.endpoint} (job {job.id}): {verdict.summary}")
    return 0


# -- following, printing, writing ------------------------------------------------------------------


def follow(client: RunPodClient, job_id: str, deadline: Deadline, queue_timeout: float,
           on_stream: Callable[[Any], None] | None = None) -> RemoteJob:
    """Wait with a progress bar; Ctrl-C cancels the remote job (the client does) and says so."""
    bar = ProgressBar(sys.stderr)

    def on_update(job: RemoteJob) -> None:
        progress = progress_of(job)
        if progress is not None:
            bar.update(progress)

    try:
        try:
            return client.wait(job_id, deadline, on_update=on_update, on_stream=on_stream,
                               start_deadline=Deadline(queue_timeout))
        finally:
            bar.close()
    except KeyboardInterrupt:
        print(f"narrator: interrupted: RunPod job {job_id} was cancelled", file=sys.stderr)
        raise


def progress_of(job: RemoteJob) -> Progress | None:
    """The handler's progress payload (``progress_output``), a queued job's nothing-yet, or a finished
    job's whole (polls may miss the last update: the bar still ends full)."""
    if job.status == IN_QUEUE:
        return Progress(job_id=job.id, state=JobState.PENDING)
    if job.status == COMPLETED and isinstance(job.output, Mapping) and isinstance(job.output.get("chunks"), int):
        chunks, seconds = job.output["chunks"], job.output.get("duration_seconds")
        return Progress(job_id=str(job.output.get("job_id", job.id)), state=JobState.SUCCESS, chunks_done=chunks,
                        chunks_total=chunks, audio_seconds=seconds if isinstance(seconds, int | float) else 0.0)
    if job.status != IN_PROGRESS or not isinstance(job.output, Mapping):
        return None
    try:
        return Progress.model_validate(job.output)
    except ValidationError:
        return None  # another handler's progress: nothing to draw


def _print_url(item: Any) -> None:
    url = item.get("audio_url") if isinstance(item, Mapping) else None
    if url:
        print(url, flush=True)


def shown(output: Any) -> Any:
    """The output for printing: inline audio replaced by its length."""
    if not isinstance(output, Mapping) or output.get("audio_b64") is None:
        return output
    rest = {k: v for k, v in output.items() if k != "audio_b64"}
    return {**rest, "audio_b64_length": len(str(output["audio_b64"]))}


def write_audio(output: Any, path: Path, endpoint: str) -> None:
    """The result's audio into ``path``: inline when it came inline, else from ``audio_url``."""
    inline = output.get("audio_b64") if isinstance(output, Mapping) else None
    url = output.get("audio_url") if isinstance(output, Mapping) else None
    if inline:
        try:
            _write(path, base64.b64decode(inline, validate=True))
        except (binascii.Error, ValueError):
            raise RemoteJobFailed(f"endpoint {endpoint} answered audio_b64 that is not base64") from None
    elif url:
        download(str(url), path)
    else:
        raise RemoteJobFailed(f"endpoint {endpoint}'s result has no audio (neither audio_b64 nor audio_url)")
    print(f"narrator: wrote {path}", file=sys.stderr)


def download(url: str, path: Path) -> None:
    parsed = urlparse(url)
    if parsed.scheme == "file":  # local storage: the worker's path, readable here when it runs here
        source = Path(unquote(parsed.path))
        try:
            _write(path, source.read_bytes())
        except FileNotFoundError:
            raise FetchError(f"{source}: no such file (file:// audio is on the worker; use S3 storage)") from None
        return
    if parsed.scheme not in ("http", "https"):
        raise FetchError(f"cannot download audio from a {parsed.scheme}: URL")
    try:
        with httpx.stream("GET", url, timeout=DOWNLOAD_TIMEOUT, follow_redirects=True) as response:
            if response.status_code >= 400:
                raise FetchError(f"downloading the audio answered HTTP {response.status_code} ({parsed.hostname})")
            with _open(path) as out:
                for block in response.iter_bytes():
                    out.write(block)
    except httpx.HTTPError as exc:
        raise FetchUnavailable(f"downloading the audio from {parsed.hostname} failed: {exc}") from None


def _write(path: Path, data: bytes) -> None:
    with _open(path) as out:
        out.write(data)


def _open(path: Path) -> Any:
    try:
        return path.open("wb")
    except OSError as exc:
        raise InvalidRequest(f"cannot write {path}: {exc.strerror}", field="output") from None
