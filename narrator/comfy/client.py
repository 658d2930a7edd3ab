"""A ComfyUI client: HTTP with httpx, progress on the websocket, ``/history`` when the socket fails.

Every call has a deadline. Foreign errors become narrator errors here: refused
connections, timeouts and 5xx are :class:`EngineUnavailable` (retryable); a prompt
ComfyUI rejects is :class:`PromptRejected` (an :class:`EngineFailed`, permanent).

Both ways out can be swapped, so tests need no server: ``transport`` is any
``httpx.BaseTransport`` (``httpx.MockTransport`` in tests), ``connect_ws`` anything
shaped like ``websocket.create_connection`` that returns a :class:`WebSocketLike`.
Left out, they are httpx's own transport and websocket-client.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

import httpx
import websocket

from ..errors import EngineFailed, EngineUnavailable, JobCancelled, NarratorError
from .messages import (
    Event,
    Outcome,
    OutputFile,
    PromptState,
    advance,
    describe_rejection,
    from_history,
    in_queue,
    parse_message,
)

log = logging.getLogger(__name__)

VOICE_FOLDER = "narrator"


class PromptRejected(EngineFailed):
    """``POST /prompt`` answered 400: the workflow or a bound value is wrong. ``body`` is ComfyUI's answer."""

    def __init__(self, message: str, body: Any = None) -> None:
        super().__init__(message)
        self.body = body

    def node_classes(self) -> set[str]:
        errors = self.body.get("node_errors") if isinstance(self.body, Mapping) else None
        return {str(e.get("class_type")) for e in (errors or {}).values() if isinstance(e, Mapping)}


class PromptLost(EngineUnavailable):
    """The server no longer knows the prompt (it restarted, or someone deleted it): run it again."""


class ComfyUnreachable(EngineUnavailable):
    """No connection to the server at all (refused, no such host, no answer): it is down or the URL is wrong."""


@dataclass(frozen=True)
class ClientConfig:
    request_timeout: float = 30.0
    """Longest wait for one HTTP answer (capped by the call's deadline)."""
    connect_timeout: float = 5.0
    poll_initial: float = 0.25
    """First ``/history`` check after the socket goes quiet; doubles up to ``poll_max``."""
    poll_max: float = 5.0
    unreachable_timeout: float = 60.0
    """Give up before the deadline when the server cannot be reached for this long."""
    cancel_grace: float = 5.0
    """After a cancel, how long to wait for ComfyUI to confirm the interrupt."""
    unreachable_hint: str = ""
    """Appended to the message when the server cannot be reached (what the operator should do)."""


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.end - time.monotonic()

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0

    def cap(self, seconds: float) -> float:
        return max(0.0, min(seconds, self.remaining()))


class WebSocketLike(Protocol):
    """What the client uses of ``websocket.WebSocket``."""

    @property
    def connected(self) -> bool: ...

    def settimeout(self, timeout: float | None) -> None: ...

    def recv(self) -> str | bytes: ...

    def close(self, *, timeout: float | None = ...) -> None: ...


WebSocketFactory = Callable[..., WebSocketLike]
"""``websocket.create_connection``'s shape: ``(url, timeout=..., **options) -> socket``; raises
``websocket.WebSocketException`` or ``OSError`` when it cannot connect."""


class _Closed:
    """The socket closed (a sentinel, not an event)."""


_CLOSED = _Closed()


class ComfyClient:
    """One ComfyUI server. ``run`` is for one thread at a time; ``interrupt`` may come from any."""

    def __init__(
        self,
        base_url: str,
        config: ClientConfig | None = None,
        client_id: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        connect_ws: WebSocketFactory | None = None,
    ) -> None:
        """``transport``: httpx's own when None. ``connect_ws``: ``websocket.create_connection`` when None."""
        self.base_url = base_url.rstrip("/")
        self.config = config or ClientConfig()
        self.client_id = client_id or uuid.uuid4().hex
        timeout = httpx.Timeout(self.config.request_timeout, connect=self.config.connect_timeout)
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport)
        self._connect_ws: WebSocketFactory = connect_ws if connect_ws is not None else websocket.create_connection
        self._ws: WebSocketLike | None = None
        self._uploaded: set[str] = set()
        self._upload_lock = threading.Lock()

    # -- HTTP ---------------------------------------------------------------------

    def _call(self, method: str, path: str, deadline: Deadline | None = None, **kwargs: Any) -> httpx.Response:
        limit = self.config.request_timeout if deadline is None else deadline.cap(self.config.request_timeout)
        if limit <= 0:
            raise EngineUnavailable(f"ComfyUI at {self.base_url}: out of time before {method} {path}")
        try:
            response = self._http.request(method, path, timeout=limit, **kwargs)
        except httpx.ConnectError as exc:
            raise self._unreachable(_connect_reason(exc)) from exc
        except httpx.ConnectTimeout as exc:
            raise self._unreachable(f"no answer within {min(limit, self.config.connect_timeout):.1f} s") from exc
        except httpx.TimeoutException as exc:
            raise EngineUnavailable(
                f"ComfyUI at {self.base_url}: {method} {path} timed out after {limit:.1f} s"
            ) from exc
        except httpx.TransportError as exc:
            raise EngineUnavailable(f"ComfyUI at {self.base_url}: {method} {path} failed: {exc!r}") from exc
        if response.status_code >= 500:
            raise EngineUnavailable(
                f"ComfyUI at {self.base_url}: {method} {path} answered {response.status_code}: {response.text[:200]}"
            )
        return response

    def _unreachable(self, reason: str, after: str = "") -> ComfyUnreachable:
        hint = f"; {self.config.unreachable_hint}" if self.config.unreachable_hint else ""
        return ComfyUnreachable(f"ComfyUI at {self.base_url} is unreachable ({reason}){after}{hint}")

    def _json(self, response: httpx.Response, what: str) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise EngineUnavailable(
                f"ComfyUI at {self.base_url}: {what} answered non-JSON: {response.text[:200]}"
            ) from exc

    def system_stats(self, deadline: Deadline | None = None) -> dict[str, Any]:
        response = self._call("GET", "/system_stats", deadline)
        if response.status_code != 200:
            raise EngineUnavailable(f"ComfyUI at {self.base_url}: /system_stats answered {response.status_code}")
        return dict(self._json(response, "/system_stats"))

    def wait_ready(self, deadline: Deadline) -> dict[str, Any]:
        """Poll ``/system_stats`` until the server answers or the deadline passes."""
        delay = 0.1
        while True:
            try:
                return self.system_stats(deadline)
            except EngineUnavailable as exc:
                if deadline.remaining() <= delay:
                    waited = f"not ready after {deadline.seconds:.0f} s"
                    if isinstance(exc, ComfyUnreachable) and exc.__cause__ is not None:
                        raise self._unreachable(_connect_reason(exc.__cause__), f": {waited}") from exc
                    raise EngineUnavailable(f"ComfyUI at {self.base_url} {waited}: {exc}") from exc
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def object_info(self, deadline: Deadline | None = None) -> dict[str, Any]:
        response = self._call("GET", "/object_info", deadline)
        if response.status_code != 200:
            raise EngineUnavailable(f"ComfyUI at {self.base_url}: /object_info answered {response.status_code}")
        return dict(self._json(response, "/object_info"))

    def models(self, folder: str, deadline: Deadline | None = None) -> list[str] | None:
        """``GET /models/{folder}``: the files ComfyUI finds in that model folder; None when it knows no such folder."""
        response = self._call("GET", f"/models/{quote(folder, safe='')}", deadline)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise EngineUnavailable(f"ComfyUI at {self.base_url}: /models/{folder} answered {response.status_code}")
        body = self._json(response, f"/models/{folder}")
        if not isinstance(body, list):
            raise EngineUnavailable(f"ComfyUI at {self.base_url}: /models/{folder} is not a list of files")
        return [str(name) for name in body]

    def upload(self, data: bytes, filename: str, subfolder: str = "", *, overwrite: bool = True,
               deadline: Deadline | None = None) -> str:
        """Put a file in ComfyUI's input folder; the name to give LoadAudio."""
        form = {"type": "input", "subfolder": subfolder}
        if overwrite:
            form["overwrite"] = "true"
        response = self._call(
            "POST", "/upload/image", deadline, files={"image": (filename, data, "application/octet-stream")}, data=form
        )
        if response.status_code != 200:
            raise EngineFailed(
                f"ComfyUI refused the upload of {filename}: {response.status_code} {response.text[:200]}"
            )
        body = self._json(response, "/upload/image")
        name, folder = str(body.get("name") or filename), str(body.get("subfolder") or "")
        return f"{folder}/{name}" if folder else name

    def upload_voice(self, data: bytes, deadline: Deadline | None = None) -> str:
        """Upload a WAV once per client under its content hash: ``narrator/<sha256>.wav``."""
        digest = hashlib.sha256(data).hexdigest()
        name = f"{VOICE_FOLDER}/{digest}.wav"
        with self._upload_lock:
            if name in self._uploaded:
                return name
        stored = self.upload(data, f"{digest}.wav", VOICE_FOLDER, overwrite=True, deadline=deadline)
        with self._upload_lock:
            self._uploaded.add(stored)
        return stored

    def forget_uploads(self, names: Iterable[str]) -> bool:
        """Drop names from the uploaded set (the server lost them); whether any was there."""
        with self._upload_lock:
            before = len(self._uploaded)
            self._uploaded.difference_update(names)
            return len(self._uploaded) != before

    def queue_prompt(self, prompt: Mapping[str, Any], deadline: Deadline | None = None) -> str:
        response = self._call("POST", "/prompt", deadline, json={"prompt": prompt, "client_id": self.client_id})
        if response.status_code == 400:
            try:
                body: Any = response.json()
            except ValueError:
                body = response.text
            raise PromptRejected(f"ComfyUI rejected the prompt: {describe_rejection(body)}", body)
        if response.status_code != 200:
            raise EngineFailed(f"ComfyUI: POST /prompt answered {response.status_code}: {response.text[:200]}")
        body = self._json(response, "/prompt")
        if body.get("node_errors"):
            log.warning("prompt partly invalid", extra={"node_errors": json.dumps(body["node_errors"])[:500]})
        return str(body["prompt_id"])

    def history(self, prompt_id: str, deadline: Deadline | None = None) -> dict[str, Any]:
        response = self._call("GET", f"/history/{prompt_id}", deadline)
        return dict(self._json(response, "/history")) if response.status_code == 200 else {}

    def queue(self, deadline: Deadline | None = None) -> dict[str, Any]:
        return dict(self._json(self._call("GET", "/queue", deadline), "/queue"))

    def view(self, file: OutputFile, deadline: Deadline | None = None) -> bytes:
        params = {"filename": file.filename, "subfolder": file.subfolder, "type": file.type}
        response = self._call("GET", "/view", deadline, params=params)
        if response.status_code == 404:
            # The output folder may be gone with a restarted container: running the prompt again rebuilds it.
            raise EngineUnavailable(f"ComfyUI at {self.base_url} has no {file.subfolder}/{file.filename}")
        if response.status_code != 200:
            raise EngineFailed(f"ComfyUI: /view {file.filename} answered {response.status_code}")
        return response.content

    def interrupt(self, prompt_id: str | None = None, timeout: float = 2.0) -> None:
        """Stop the running prompt (only if it is ``prompt_id``, when given). Best effort."""
        body = {"prompt_id": prompt_id} if prompt_id else {}
        self._quietly("POST", "/interrupt", timeout, json=body)

    def delete_queued(self, prompt_ids: Iterable[str], timeout: float = 2.0) -> None:
        self._quietly("POST", "/queue", timeout, json={"delete": list(prompt_ids)})

    def delete_history(self, prompt_ids: Iterable[str]) -> None:
        self._quietly("POST", "/history", 2.0, json={"delete": list(prompt_ids)})

    def free(self, *, unload_models: bool = False, free_memory: bool = True) -> None:
        self._quietly("POST", "/free", 5.0, json={"unload_models": unload_models, "free_memory": free_memory})

    def _quietly(self, method: str, path: str, timeout: float, **kwargs: Any) -> None:
        """A call whose failure changes nothing for the caller: logged, never raised, briefly waited for."""
        try:
            self._call(method, path, Deadline(min(self.config.request_timeout, timeout)), **kwargs)
        except EngineUnavailable as exc:
            log.warning("ComfyUI call failed", extra={"call": f"{method} {path}", "error": str(exc)})

    # -- websocket ----------------------------------------------------------------

    @property
    def ws_url(self) -> str:
        scheme, rest = self.base_url.split("://", 1)
        return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/ws?clientId={self.client_id}"

    def _connect(self, deadline: Deadline) -> bool:
        """Open the socket if it is not open; False when it cannot be (the caller polls instead)."""
        if self._ws is not None and self._ws.connected:
            return True
        self._ws = None
        limit = deadline.cap(self.config.connect_timeout)
        if limit <= 0:
            return False
        try:
            self._ws = self._connect_ws(
                self.ws_url, timeout=limit, enable_multithread=False, skip_utf8_validation=True
            )
        except (websocket.WebSocketException, OSError) as exc:
            log.info("websocket unavailable, polling /history", extra={"url": self.base_url, "error": repr(exc)})
            return False
        return True

    def _recv(self, timeout: float) -> Event | _Closed | None:
        """The next event, ``None`` after ``timeout`` of silence, or ``_CLOSED``."""
        ws = self._ws
        if ws is None:
            return _CLOSED
        try:
            ws.settimeout(max(timeout, 0.001))
            raw = ws.recv()
        except (websocket.WebSocketTimeoutException, TimeoutError):
            return None
        except (websocket.WebSocketException, OSError):
            self._drop_ws()
            return _CLOSED
        if not ws.connected:
            self._drop_ws()
            return _CLOSED
        return parse_message(raw)

    def _drop_ws(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            try:
                ws.close(timeout=0.2)
            except (websocket.WebSocketException, OSError):
                pass

    # -- running a prompt -------------------------------------------------------------

    def run(
        self,
        prompt: Mapping[str, Any],
        deadline: Deadline,
        cancel: threading.Event | None = None,
        on_queued: Callable[[str], None] | None = None,
    ) -> PromptState:
        """Queue a prompt and follow it to its end. The socket opens first so no message is missed."""
        self._connect(deadline)
        prompt_id = self.queue_prompt(prompt, deadline)
        if on_queued is not None:
            on_queued(prompt_id)
        state = self.wait(prompt_id, deadline, cancel)
        if state.outcome is Outcome.SUCCESS and not state.audio:
            # A saver whose `executed` message did not reach us: the history has every output.
            state = from_history(prompt_id, self.history(prompt_id, deadline)) or state
        return state

    def wait(self, prompt_id: str, deadline: Deadline, cancel: threading.Event | None = None) -> PromptState:
        """Follow ``prompt_id`` on the socket; check ``/history`` whenever the socket is quiet, closed or absent."""
        return _Waiter(self, prompt_id, deadline, cancel).run()

    def check(self, prompt_id: str, deadline: Deadline) -> PromptState | None:
        """The prompt's state from ``/history``; None while queued or running.

        A prompt that is neither in the history nor in the queue was lost (the server
        restarted): EngineUnavailable, so the chunk is retried.
        """
        state = from_history(prompt_id, self.history(prompt_id, deadline))
        if state is not None:
            return state
        if in_queue(prompt_id, self.queue(deadline)):
            return None
        # It may have finished between the two calls.
        state = from_history(prompt_id, self.history(prompt_id, deadline))
        if state is None:
            raise PromptLost(
                f"ComfyUI at {self.base_url} lost prompt {prompt_id}: not queued, not in history (restarted?)"
            )
        return state

    def abandon(self, prompt_id: str) -> None:
        """Take a prompt we no longer wait for off the GPU and out of the queue (a second at most each)."""
        self.interrupt(prompt_id, timeout=1.0)
        self.delete_queued([prompt_id], timeout=1.0)

    def close(self) -> None:
        self._drop_ws()
        self._http.close()


class _Waiter:
    """The wait loop for one prompt: socket first, ``/history`` with backoff as the fallback."""

    def __init__(self, client: ComfyClient, prompt_id: str, deadline: Deadline, cancel: threading.Event | None):
        self.client = client
        self.state = PromptState(prompt_id)
        self.deadline = deadline
        self.cancel = cancel
        self.cancel_seen = False
        self.interval = client.config.poll_initial
        self.next_check = time.monotonic() + self.interval
        self.unreachable_since: float | None = None

    def run(self) -> PromptState:
        pid = self.state.prompt_id
        while not self.state.finished:
            self._watch_cancel()
            if self.deadline.expired:
                self.client.abandon(pid)
                if self.cancel_seen:
                    raise JobCancelled(f"prompt {pid} was cancelled")
                raise EngineUnavailable(f"ComfyUI prompt {pid} did not finish within {self.deadline.seconds:.0f} s")
            if self.client._ws is None and self.client._connect(self.deadline):
                self.next_check = time.monotonic()  # messages may have passed while it was closed
            now = time.monotonic()
            if self.client._ws is not None and now < self.next_check:
                self._listen(self.next_check - now)
            else:
                self._poll()
        return self.state

    def _watch_cancel(self) -> None:
        if self.cancel is None or self.cancel_seen or not self.cancel.is_set():
            return
        self.cancel_seen = True
        self.client.abandon(self.state.prompt_id)
        grace = Deadline(self.client.config.cancel_grace)
        if grace.end < self.deadline.end:
            self.deadline = grace
        self.interval = self.client.config.poll_initial
        self.next_check = time.monotonic() + self.interval

    def _listen(self, quiet: float) -> None:
        event = self.client._recv(self.deadline.cap(min(quiet, 1.0)))
        if event is None:
            return
        if isinstance(event, _Closed):
            self.next_check = time.monotonic()
            return
        before = self.state
        self.state = advance(self.state, event)
        if self.state is not before:
            self.interval = self.client.config.poll_initial
            self.next_check = time.monotonic() + self.interval

    def _poll(self) -> None:
        try:
            found = self.client.check(self.state.prompt_id, self.deadline)
        except PromptLost as exc:
            if self.cancel_seen:
                raise JobCancelled(f"prompt {self.state.prompt_id} was cancelled before it ran") from exc
            raise
        except EngineUnavailable as exc:
            self._unreachable(exc)
            found = None
        else:
            self.unreachable_since = None
        if found is not None:
            self.state = found
            return
        self.interval = min(self.interval * 2, self.client.config.poll_max)
        self.next_check = time.monotonic() + self.interval
        if self.client._ws is None:
            wait = self.deadline.cap(self.interval)
            if self.cancel is not None:
                self.cancel.wait(wait)
            else:
                time.sleep(wait)

    def _unreachable(self, exc: EngineUnavailable) -> None:
        now = time.monotonic()
        if self.unreachable_since is None:
            self.unreachable_since = now
        elif now - self.unreachable_since > self.client.config.unreachable_timeout:
            raise exc


def _connect_reason(exc: BaseException) -> str:
    """``connection refused`` from ``ConnectError('[Errno 111] Connection refused')``."""
    if isinstance(exc, httpx.ConnectTimeout):
        return "no answer"
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", str(exc)).strip()
    return (text[:1].lower() + text[1:]) if text else type(exc).__name__


def outcome_error(state: PromptState) -> NarratorError | None:
    """The error a finished prompt stands for, or None when it succeeded."""
    if state.outcome is Outcome.ERROR:
        err = state.error
        if err is None:
            return EngineFailed(f"ComfyUI prompt {state.prompt_id} failed")
        return EngineFailed(
            f"ComfyUI node {err.node_id} ({err.node_type}) failed: {err.exception_type}: {err.exception_message}"
        )
    if state.outcome is Outcome.INTERRUPTED:
        where = f" at node {state.interrupted.node_id} ({state.interrupted.node_type})" if state.interrupted else ""
        return JobCancelled(f"ComfyUI prompt {state.prompt_id} was interrupted{where}")
    return None
