"""Posts to RunPod's job-done (progress) and job-stream webhooks, one at a time, in order.

``runpod.serverless.progress_update`` starts a thread per update, so updates can
overtake each other and the final result. Here every post is awaited by the job's
own coroutine through the SDK's own ``send_result`` / ``stream_result`` (the same
calls its generator path makes), so posts arrive in order and all of them before
the handler returns its result.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import aiohttp
from runpod.http_client import AsyncClientSession
from runpod.serverless.modules import rp_http

log = logging.getLogger(__name__)

#: A stuck control plane must not hold the job: a post that takes longer is dropped.
POST_TIMEOUT = 10.0


class Channel:
    """One job's updates to RunPod. ``enabled`` is false off-RunPod (no webhook URLs)."""

    def __init__(self, job: dict[str, Any], enabled: bool) -> None:
        self.job = job
        self.enabled = enabled
        self._session: aiohttp.ClientSession | None = None

    async def progress(self, payload: dict[str, Any]) -> None:
        if self.enabled:
            await self._post(rp_http.send_result(self._open(), {"status": "IN_PROGRESS", "output": payload}, self.job))

    async def stream(self, payload: dict[str, Any]) -> None:
        if self.enabled:
            await self._post(rp_http.stream_result(self._open(), {"output": payload}, self.job))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _open(self) -> aiohttp.ClientSession:
        # One session per job: the SDK sets the X-Request-ID header on the session it is given.
        if self._session is None:
            self._session = AsyncClientSession()
        return self._session

    async def _post(self, post: Any) -> None:
        # Updates are best effort: the SDK logs (and swallows) HTTP errors; time-outs end here.
        try:
            await asyncio.wait_for(post, POST_TIMEOUT)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            log.warning("runpod update not delivered", extra={"request_id": self.job.get("id"), "error": str(exc)})


def webhooks_configured(env: Mapping[str, str]) -> bool:
    """The SDK reads its webhook URLs when imported; without them there is nobody to post to."""
    return bool(env.get("RUNPOD_WEBHOOK_POST_OUTPUT"))
