"""One call to RunPod's API: bounded by a deadline, retried when it may pass, its errors translated.

httpx errors and status codes become narrator errors here and nowhere else: 401/403
:class:`RemoteUnauthorized`, 404 :class:`EndpointNotFound` (or :class:`RemoteJobNotFound` for a
job's own route), 429 :class:`RemoteRateLimited`, 5xx, refused connections and time-outs
:class:`RemoteUnavailable`. The retryable ones are tried again with jittered exponential backoff
(honouring ``Retry-After``) while attempts and the deadline last. The API key never appears in
a message: only the endpoint id and the route do.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from typing import Any

import httpx

from ..comfy.client import Deadline
from ..errors import (
    EndpointNotFound,
    RemoteJobNotFound,
    RemoteRateLimited,
    RemoteUnauthorized,
    RemoteUnavailable,
    RetryableError,
)

log = logging.getLogger(__name__)

KEY_HINT = "check NARRATOR_RUNPOD_API_KEY (or RUNPOD_API_KEY)"
#: A call never gets less than this to answer, however little of its deadline is left.
MIN_CALL_SECONDS = 0.05


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    """Tries in all, for 429, 5xx, connection errors and time-outs."""
    backoff: float = 0.5
    """Seconds before the second try; doubles each time, with full jitter."""
    backoff_max: float = 8.0


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    """Below the endpoint: ``run``, ``status/{id}`` ..."""
    body: Any = None
    params: dict[str, str] | None = None
    job_id: str = ""
    """The job the route names, for a 404's message."""


def send(client: httpx.Client, endpoint_id: str, call: Call, deadline: Deadline, retry: RetryPolicy,
         request_timeout: float) -> Any:
    """The JSON answer of ``call``, retried while it may pass; raises the translated error otherwise."""
    attempt = 1
    while True:
        try:
            return _once(client, endpoint_id, call, deadline, request_timeout)
        except (RemoteRateLimited, RemoteUnavailable) as exc:
            pause = _pause(exc, attempt, retry)
            if attempt >= retry.attempts or pause >= deadline.remaining():
                if attempt == 1:
                    raise
                raise type(exc)(f"{exc}; gave up after {attempt} tries") from None
            log.info("runpod call retried", extra={"route": call.path, "attempt": attempt, "error": str(exc),
                                                   "pause": round(pause, 3)})
            time.sleep(pause)
            attempt += 1


def _once(client: httpx.Client, endpoint_id: str, call: Call, deadline: Deadline, request_timeout: float) -> Any:
    route = f"/{call.path.split('/')[0]}"
    if deadline.expired:
        raise RemoteUnavailable(f"RunPod {route} for endpoint '{endpoint_id}': no time left to ask")
    timeout = max(MIN_CALL_SECONDS, deadline.cap(request_timeout))
    try:
        response = client.request(call.method, f"{endpoint_id}/{call.path}", json=call.body, params=call.params,
                                  timeout=timeout)
    except httpx.TimeoutException:
        raise RemoteUnavailable(f"RunPod {route} for endpoint '{endpoint_id}' did not answer within "
                                f"{timeout:.1f} s") from None
    except httpx.TransportError as exc:
        raise RemoteUnavailable(f"cannot reach RunPod at {client.base_url}: {type(exc).__name__}: {exc}") from None
    return _translate(response, endpoint_id, call, route)


def _translate(response: httpx.Response, endpoint_id: str, call: Call, route: str) -> Any:
    code = response.status_code
    if code in (401, 403):
        raise RemoteUnauthorized(f"RunPod refused the API key (HTTP {code}); {KEY_HINT}")
    if code == 404:
        if call.job_id and _endpoint_known(response):
            raise RemoteJobNotFound(f"RunPod has no job '{call.job_id}' on endpoint '{endpoint_id}' "
                                    "(a wrong id, or its result expired: /run results are kept 30 minutes)")
        raise EndpointNotFound(f"no RunPod endpoint '{endpoint_id}' (check the endpoint id)")
    if code == 429:
        raise RemoteRateLimited(f"RunPod rate-limited {route} on endpoint '{endpoint_id}' (HTTP 429)",
                                retry_after=_retry_after(response))
    if code >= 500 or code in (408, 425):
        raise RemoteUnavailable(f"RunPod {route} for endpoint '{endpoint_id}' answered HTTP {code}")
    if code >= 400:
        raise RemoteUnavailable(f"RunPod {route} for endpoint '{endpoint_id}' refused the call "
                                f"(HTTP {code}: {response.text[:200]})")
    try:
        return response.json()
    except ValueError:
        raise RemoteUnavailable(f"RunPod {route} for endpoint '{endpoint_id}' answered something that is "
                                f"not JSON (HTTP {code})") from None


def _endpoint_known(response: httpx.Response) -> bool:
    """A job route's 404 is about the job when RunPod says so; otherwise it is the endpoint's."""
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and "endpoint" not in str(body.get("error", "")).lower()


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("Retry-After")
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except ValueError:
        return None  # an HTTP date: rare from RunPod; backoff applies instead


def _pause(exc: RetryableError, attempt: int, retry: RetryPolicy) -> float:
    asked = exc.retry_after if isinstance(exc, RemoteRateLimited) else None
    if asked is not None:
        return asked
    # Full jitter: many clients rate-limited at once do not come back in step.
    return random.uniform(0, min(retry.backoff_max, retry.backoff * 2 ** (attempt - 1)))
