"""Run one RunPod job: validate, submit, follow, and turn what happens into events.

:func:`events` is an async generator of :class:`Event` (progress, streamed chunk,
then exactly one result, success or error). The blocking parts (waiting on the
job, reading storage) run in worker threads, so the event loop stays free for
RunPod's stop signals and for posting updates. Whatever way the generator ends
before the job does (time-out, RunPod stop, the consumer going away), the job is
cancelled: nothing keeps running for a job nobody awaits.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

from .. import jobs
from ..errors import JobCancelled, JobFailed, JobTimeout, NarratorError
from ..job.delivery import delivery
from ..request import JobRequest
from ..result import Progress
from ..settings import SECRET_FIELDS, Settings
from .chunks import ChunkCursor
from .output import chunk_output, error_output, progress_output, split_input, success_output

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    kind: Literal["progress", "chunk", "result"]
    payload: dict[str, Any]


def secrets(settings: Settings) -> list[str]:
    return [str(getattr(settings, name)) for name in SECRET_FIELDS]


def failure(message: str, settings: Settings) -> Event:
    return Event("result", error_output(message, secrets(settings)))


async def events(job: dict[str, Any], settings: Settings) -> AsyncGenerator[Event, None]:
    started = time.monotonic()
    try:
        options = split_input(job.get("input"))
        request = JobRequest.parse(options.request)
        # Submitted on the loop, not in a thread: a stop arriving mid-submit would
        # otherwise leave a job running that this coroutine never learned about.
        handle = jobs.submit(request, settings)
    except NarratorError as exc:
        yield failure(str(exc), settings)
        return
    log.info("runpod job submitted", extra={"request_id": job.get("id"), "job_id": handle.id})
    # The endpoint's timeout bounds every request: RunPod stops the worker's request soon after.
    timeout = min(request.timeout or settings.job_timeout, settings.job_timeout)
    follower = _Follower(handle, request, settings, options.stream)
    dealt_with = False  # the job ended, or was cancelled here
    try:
        async for event in follower.run(max(0.0, started + timeout - time.monotonic())):
            yield event
        dealt_with = True
        # The audio inline as the request allows (narrator.job.delivery), read from storage.
        result = await asyncio.to_thread(handle.result, True)
        yield Event("result", success_output(result or follower.result, time.monotonic() - started))
    except JobTimeout:
        dealt_with = _cancel(handle, "timeout")
        yield failure(f"job {handle.id} did not finish within {timeout:g} s; it was cancelled", settings)
    except asyncio.CancelledError:
        # RunPod stopped the request (a cancel, or the endpoint's execution timeout).
        what = "it had finished" if dealt_with else "it was cancelled"
        dealt_with = dealt_with or _cancel(handle, "stopped by RunPod")
        yield failure(f"job {handle.id} was stopped by RunPod; {what}", settings)
    except (JobFailed, JobCancelled) as exc:
        dealt_with = True
        yield failure(str(exc), settings)
    except NarratorError as exc:
        # Lost track of the job (storage or result backend unreachable): stop it rather than leave it.
        dealt_with = _cancel(handle, "lost")
        yield failure(str(exc), settings)
    finally:
        if not dealt_with:
            _cancel(handle, "abandoned")


class _Follower:
    """Waits for the job in a thread and hands its progress to the loop, in order."""

    def __init__(self, handle: jobs.JobHandle, request: JobRequest, settings: Settings, stream: bool) -> None:
        self.handle = handle
        self.settings = settings
        self.cursor = ChunkCursor() if stream else None
        self.expires = delivery(request.output, settings).url_expires
        self.result: Any = None

    async def run(self, timeout: float) -> AsyncIterator[Event]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Event | None] = asyncio.Queue()

        def on_progress(progress: Progress) -> None:  # in the waiting thread
            for event in self._events(progress):
                loop.call_soon_threadsafe(queue.put_nowait, event)

        waiter = loop.run_in_executor(None, lambda: self.handle.wait(timeout, on_progress=on_progress))
        # Progress events were queued from the thread before it returned, so they come first.
        waiter.add_done_callback(lambda future: _finished(future, queue))
        while (event := await queue.get()) is not None:
            yield event
        self.result = waiter.result()

    def _events(self, progress: Progress) -> list[Event]:
        out = [Event("progress", progress_output(progress))]
        if self.cursor is None or progress.chunks_done <= self.cursor.next_index:
            return out
        job = self.handle.job_store
        done = job.done()
        for index in self.cursor.advance(done):
            url = job.chunk_url(index, self.expires)
            seconds = done[index].seconds
            out.append(Event("chunk", chunk_output(self.handle.id, index, progress.chunks_total, seconds, url)))
        return out


def _finished(future: asyncio.Future[Any], queue: asyncio.Queue[Event | None]) -> None:
    if not future.cancelled():
        # Mark the outcome as seen: after a stop nobody reads it, and asyncio would warn.
        future.exception()
    queue.put_nowait(None)


def _cancel(handle: jobs.JobHandle, why: str) -> bool:
    log.warning("cancelling job", extra={"job_id": handle.id, "why": why})
    try:
        # Inline, not in a thread: this coroutine may itself be mid-cancellation, and the
        # job must be stopped regardless. It is quick: a marker and a revoke broadcast.
        handle.cancel()
    except NarratorError as exc:
        log.error("could not cancel job", extra={"job_id": handle.id, "error": str(exc)})
    return True
