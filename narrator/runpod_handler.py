"""RunPod serverless entry: ``python -m narrator.runpod_handler``.

``handler(job)`` is a plain function, as the seed worker's was: it validates ``job["input"]``
(a :class:`~narrator.request.JobRequest` plus the handler option ``stream``), submits the job
through the broker (or runs it in-process when no broker is configured), follows it, and
returns the seed-compatible output dict or ``{"error": "..."}``, from synchronous code or from
inside a running event loop. The SDK is given :func:`async_handler`, the same job as a
coroutine. While it waits it posts progress after each finished chunk, and with
``"stream": true`` each chunk's audio URL to RunPod's stream channel,
in order, all before the result. A time-out or a RunPod stop cancels the job.

Before it asks RunPod for a job, :func:`main` makes sure whoever synthesizes is ready: with
no broker (the template's mode) this process runs every job's chain itself, so it loads
``NARRATOR_WARMUP_MODELS`` (else the default model) on its ComfyUI first; with a broker it
waits for the GPU worker whose ready file ``NARRATOR_READY_FILE`` names, if any. When that
fails it exits 1 with the reason and takes no job (docker/start-runpod.sh starts both modes).

``python -m narrator.runpod_handler --generator`` registers :func:`generator_handler`
instead: the SDK then aggregates every yield, so ``/runsync`` returns a list (each
streamed chunk, then the result) for every request; ``--generator --test_input '{...}'``
prints that list. The default keeps ``output`` a dict, as the seed worker's clients
expect. See docs/runpod.md.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import AsyncGenerator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from .errors import ConfigurationError, InvalidRequest, NarratorError
from .ops.logs import setup_logging
from .runpod.channel import Channel, webhooks_configured
from .runpod.chunk_mode import is_chunk, run_chunk
from .runpod.output import error_output
from .runpod.runner import events, secrets
from .settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HandlerConfig:
    settings: Settings
    post_updates: bool
    """Post progress and stream updates (false off-RunPod: nobody to post to)."""


_config: HandlerConfig | None = None


def configure(settings: Settings, post_updates: bool) -> None:
    global _config
    _config = HandlerConfig(settings, post_updates)


def current() -> HandlerConfig:
    """What :func:`main` configured; after a bare import (a wrapper, a benchmark), the process's settings."""
    if _config is None:
        from .tasks.context import current as process_context

        configure(process_context().settings, webhooks_configured(os.environ))
    assert _config is not None
    return _config


def handler(job: dict[str, Any]) -> dict[str, Any]:
    """The job's result (seed-compatible) or ``{"error": "..."}``: ``result = handler(test_input)``."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(async_handler(job))
    # Called from a coroutine (a notebook, an async test): its loop is busy running the caller,
    # so the job gets a loop of its own in a thread, and the caller blocks, as it asked to.
    with ThreadPoolExecutor(1, thread_name_prefix="narrator-handler") as pool:
        return pool.submit(asyncio.run, async_handler(job)).result()


async def async_handler(job: dict[str, Any]) -> dict[str, Any]:
    """The RunPod handler the SDK runs: :func:`handler` as a coroutine."""
    config = current()
    if is_chunk(job.get("input") if isinstance(job, dict) else None):
        return await _chunk(job, config)
    channel = Channel(job, config.post_updates)
    try:
        async with aclosing(events(job, config.settings)) as stream:
            async for event in stream:
                if event.kind == "progress":
                    await channel.progress(event.payload)
                elif event.kind == "chunk":
                    await channel.stream(event.payload)
                else:
                    return event.payload
        return error_output("the job ended without a result")
    except asyncio.CancelledError:
        # Stopped while posting an update; leaving ``aclosing`` has cancelled the job.
        return error_output("the request was stopped by RunPod; an unfinished job was cancelled")
    except Exception as exc:  # the edge: RunPod would send the caller a traceback
        log.exception("runpod handler failed", extra={"request_id": _request_id(job)})
        return error_output(f"internal error: {type(exc).__name__}: {exc}", secrets(config.settings))
    finally:
        await channel.close()


async def generator_handler(job: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
    """The same job as :func:`handler`, yielding streamed chunks and then the result."""
    config = current()
    if is_chunk(job.get("input") if isinstance(job, dict) else None):
        yield await _chunk(job, config)
        return
    channel = Channel(job, config.post_updates)
    try:
        async with aclosing(events(job, config.settings)) as stream:
            async for event in stream:
                if event.kind == "progress":
                    await channel.progress(event.payload)
                else:
                    yield event.payload
    except Exception as exc:  # the edge: RunPod would send the caller a traceback
        log.exception("runpod handler failed", extra={"request_id": _request_id(job)})
        yield error_output(f"internal error: {type(exc).__name__}: {exc}", secrets(config.settings))
    finally:
        await channel.close()


async def aggregated_handler(job: dict[str, Any]) -> list[dict[str, Any]] | dict[str, Any]:
    """:func:`generator_handler`'s yields as one list, as ``/runsync`` returns them with
    ``return_aggregate_stream``; an error alone, as the SDK reports it. For ``--test_input``, whose
    local run would otherwise return the generator object itself."""
    outputs: list[dict[str, Any]] = []
    async with aclosing(generator_handler(job)) as stream:
        async for output in stream:
            if "error" in output:
                return output
            outputs.append(output)
    return outputs


async def _chunk(job: dict[str, Any], config: HandlerConfig) -> dict[str, Any]:
    """One chunk for the ``runpod`` engine (narrator.runpod.chunk_mode), on this worker's engine."""
    from .tasks.context import context_for

    try:
        return await asyncio.to_thread(run_chunk, job["input"], context_for(config.settings))
    except Exception as exc:  # the edge: RunPod marks the job FAILED, which the engine retries
        log.exception("runpod chunk failed", extra={"request_id": _request_id(job)})
        return error_output(f"internal error: {type(exc).__name__}: {exc}", secrets(config.settings))


def _request_id(job: Any) -> Any:
    return job.get("id") if isinstance(job, dict) else None


def main() -> None:
    generator = "--generator" in sys.argv
    if generator:
        sys.argv.remove("--generator")
    local_test = any(arg.startswith("--test_input") for arg in sys.argv)
    try:
        settings = Settings.from_env()
    except InvalidRequest as exc:
        print(f"narrator: bad configuration: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    setup_logging("runpod", json_logs=settings.log_json)
    configure(settings, webhooks_configured(os.environ))
    _check_storage(settings)
    try:
        # No job before whoever synthesizes it is ready: this process (in-process, it loads its
        # models first; a one-off --test_input run loads the model on its one job anyway), or the
        # GPU worker whose ready file NARRATOR_READY_FILE names (tasks/mode.py).
        from .tasks.context import init

        mode = init(settings).mode
        mode.get_ready(warm_up=not local_test)
    except ConfigurationError as exc:
        print(f"narrator: bad configuration: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except NarratorError as exc:
        # A worker that cannot load its model must not take jobs; RunPod replaces it.
        log.error("warm-up failed, taking no jobs", extra={"error": str(exc)})
        raise SystemExit(1) from None
    log.info("ready, taking jobs", extra={"run_mode": mode.name})

    import runpod

    _quiet_sdk_logs()
    runpod.serverless.start({"handler": _chosen(generator, local_test), "return_aggregate_stream": True})


def _chosen(generator: bool, local_test: bool) -> Callable[..., Any]:
    if not generator:
        return async_handler
    # The SDK's local test run calls a generator handler like a plain one and returns the generator.
    return aggregated_handler if local_test else generator_handler


def _check_storage(settings: Settings) -> None:
    if os.environ.get("RUNPOD_WEBHOOK_GET_JOB") and settings.effective_storage_url.startswith("file:"):
        log.warning(
            "storage is a local folder: audio_url and captions_url are file:// paths on this worker, and "
            "audio over the audio_b64 cap cannot be fetched; set NARRATOR_STORAGE_URL=s3://bucket/prefix"
        )


def _quiet_sdk_logs() -> None:
    # The SDK logs every job's input and output at its default level (DEBUG): voices, audio, URLs.
    if not (os.environ.get("RUNPOD_LOG_LEVEL") or os.environ.get("RUNPOD_DEBUG_LEVEL")):
        from runpod.serverless.modules.rp_logger import RunPodLogger

        RunPodLogger().level = "INFO"


if __name__ == "__main__":
    main()
