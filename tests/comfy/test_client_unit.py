"""ComfyClient with no server: HTTP through ``httpx.MockTransport``, the websocket a scripted fake.

The fakes replay what a real ComfyUI said (``tests/comfy/traces``). Nothing here waits on a
clock to synchronise: where the client's own loop waits, the configured intervals are a
millisecond or two, and a deadline that must run out is moved into the past by the fake server.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import httpx
import pytest
import websocket

from narrator.comfy.client import (
    ClientConfig,
    ComfyClient,
    ComfyUnreachable,
    Deadline,
    PromptLost,
    PromptRejected,
    outcome_error,
)
from narrator.comfy.messages import Outcome, OutputFile, PromptState, from_history
from narrator.errors import EngineFailed, EngineUnavailable, JobCancelled, RetryableError
from tests.support.comfy import load_trace

BASE = "http://comfy.test:8188"
FAST = ClientConfig(
    request_timeout=1.0,
    connect_timeout=0.5,
    poll_initial=0.001,
    poll_max=0.002,
    unreachable_timeout=1.0,
    cancel_grace=0.01,
    unreachable_hint="start the server",
)
SOCKET = ClientConfig(request_timeout=1.0, connect_timeout=0.5, poll_initial=5.0, poll_max=5.0)
"""For runs the socket sees through: /history is not due before the last word, so the calls made are exact."""

# -- the fakes ------------------------------------------------------------------------

Answer = httpx.Response | BaseException | Callable[[httpx.Request], Any]


class Server:
    """ComfyUI's HTTP side as a ``MockTransport`` handler: canned answers per route, every request kept.

    ``on(method, path, *answers)``: successive requests get successive answers, the last one repeats.
    An answer is a response, an exception to raise, or a callable of the request returning either.
    Routes not set answer 404, as ComfyUI does.
    """

    def __init__(self) -> None:
        self.routes: dict[str, list[Answer]] = {}
        self.requests: list[httpx.Request] = []

    def on(self, method: str, path: str, *answers: Answer) -> Server:
        self.routes[f"{method} {path}"] = list(answers)
        return self

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answers = self.routes.get(f"{request.method} {request.url.path}")
        if not answers:
            return httpx.Response(404, text="404: Not Found")
        answer: Any = answers.pop(0) if len(answers) > 1 else answers[0]
        if callable(answer) and not isinstance(answer, httpx.Response | BaseException):
            answer = answer(request)
        if isinstance(answer, BaseException):
            raise answer
        assert isinstance(answer, httpx.Response)
        return answer

    def calls(self, method: str | None = None, path: str | None = None) -> list[httpx.Request]:
        return [r for r in self.requests if method in (None, r.method) and path in (None, r.url.path)]

    @property
    def log(self) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.requests]


class FakeSocket:
    """A connected websocket that hands out ``frames`` and then ``then``s.

    ``then``: ``"silent"`` (every recv times out), ``"drop"`` (the connection breaks),
    ``"close"`` (a close frame: ``""`` and no longer connected).
    """

    def __init__(self, frames: Iterable[str | bytes] = (), then: str = "silent") -> None:
        self.frames = deque(frames)
        self.then = then
        self.connected = True
        self.closed = False
        self.received = 0
        self.longest_timeout = 0.0
        self.on_recv: Callable[[FakeSocket], None] | None = None

    def settimeout(self, timeout: float | None) -> None:
        assert timeout is not None and timeout > 0
        self.longest_timeout = max(self.longest_timeout, timeout)

    def recv(self) -> str | bytes:
        if self.on_recv is not None:
            self.on_recv(self)
        if not self.connected:
            raise websocket.WebSocketConnectionClosedException("socket is already closed.")
        if self.frames:
            self.received += 1
            return self.frames.popleft()
        if self.then == "drop":
            self.connected = False
            raise websocket.WebSocketConnectionClosedException("Connection to remote host was lost.")
        if self.then == "close":
            self.connected = False
            return ""
        raise websocket.WebSocketTimeoutException("timed out")

    def close(self, *, timeout: float | None = None) -> None:
        self.connected = False
        self.closed = True


class Sockets:
    """``connect_ws``: hands out the given sockets in order, then refuses (as a server with no websocket)."""

    def __init__(self, *sockets: FakeSocket | BaseException) -> None:
        self.pending = deque(sockets)
        self.urls: list[str] = []
        self.options: list[dict[str, Any]] = []

    def __call__(self, url: str, **options: Any) -> FakeSocket:
        self.urls.append(url)
        self.options.append(options)
        if not self.pending:
            raise ConnectionRefusedError(111, "Connection refused")
        sock = self.pending.popleft()
        if isinstance(sock, BaseException):
            raise sock
        return sock


def make_client(server: Server, sockets: Sockets | None = None, config: ClientConfig = FAST,
                base_url: str = BASE) -> ComfyClient:
    return ComfyClient(base_url, config, client_id="unit", transport=httpx.MockTransport(server),
                       connect_ws=sockets if sockets is not None else Sockets())


@pytest.fixture
def server() -> Server:
    return Server()


# -- the recorded traces ----------------------------------------------------------------


class Trace:
    """One recorded prompt: its id, the socket frames as sent, the ``/history`` answer."""

    def __init__(self, name: str) -> None:
        entries = load_trace(name)
        assert isinstance(entries, list)
        self.entries = entries
        self.posted: dict[str, Any] = next(e["post_prompt"]["body"] for e in entries if "post_prompt" in e)
        self.pid: str = self.posted["prompt_id"]
        self.messages: list[dict[str, Any]] = [e["ws"] for e in entries if "ws" in e]
        self.history_body: dict[str, Any] = next(e["history"]["body"] for e in entries if "history" in e)

    def frames(self, drop: Callable[[dict[str, Any]], bool] = lambda m: False) -> list[str]:
        return [json.dumps(m) for m in self.messages if not drop(m)]

    def serve(self, server: Server, *history: Answer) -> Server:
        """POST /prompt answers the recorded id; GET /history answers ``history`` (default: the recording)."""
        server.on("POST", "/prompt", httpx.Response(200, json=self.posted))
        server.on("GET", f"/history/{self.pid}", *(history or (httpx.Response(200, json=self.history_body),)))
        return server

    def expected(self) -> PromptState:
        state = from_history(self.pid, self.history_body)
        assert state is not None
        return state


def _audio(state: PromptState) -> list[tuple[str, str, str]]:
    return sorted((f.subfolder, f.filename, f.type) for f in state.audio)


def _running(pid: str) -> httpx.Response:
    return httpx.Response(200, json={"queue_running": [[0, pid, {}, {}, []]], "queue_pending": []})


EMPTY_QUEUE = httpx.Response(200, json={"queue_running": [], "queue_pending": []})
NOT_YET = httpx.Response(200, json={})
PROMPT: dict[str, Any] = {"1": {"class_type": "LoadAudio", "inputs": {"audio": "x.wav"}}}
TRACES = ["load_save.json", "load_save_rerun.json", "multi.json", "vibevoice_1_5b.json", "corrupt.json",
          "enemyx_nomodel.json", "tokenizer_missing.json"]

# -- following a prompt ---------------------------------------------------------------


def test_queue_and_follow_the_socket_to_success(server: Server) -> None:
    trace = Trace("load_save.json")
    trace.serve(server)
    frames: list[str | bytes] = [*trace.frames()]
    frames.insert(3, b"\x00\x00\x00\x01PNG preview")  # binary preview frames are skipped
    sock = FakeSocket(frames)
    sockets = Sockets(sock)
    queued: list[str] = []
    client = make_client(server, sockets, SOCKET)
    state = client.run(PROMPT, Deadline(5), on_queued=queued.append)
    assert queued == [trace.pid]
    assert state.finished and state.outcome is Outcome.SUCCESS
    assert state.audio == [OutputFile("ComfyUI_00001_.flac", "audio", "output", "2")]
    assert server.log == ["POST /prompt"]  # the socket said it all: no /history
    assert json.loads(server.requests[0].content) == {"prompt": PROMPT, "client_id": "unit"}
    assert sockets.urls == ["ws://comfy.test:8188/ws?clientId=unit"]
    assert sockets.options[0]["timeout"] <= FAST.connect_timeout
    assert sock.frames == deque() and not sock.closed
    client.close()
    assert sock.closed


@pytest.mark.parametrize("name", TRACES)
def test_socket_and_history_agree_on_every_trace(name: str, server: Server) -> None:
    trace = Trace(name)
    by_socket = make_client(trace.serve(server), Sockets(FakeSocket(trace.frames())), SOCKET).run(PROMPT, Deadline(5))
    by_history = make_client(trace.serve(Server()), Sockets()).run(PROMPT, Deadline(5))  # no socket at all
    expected = trace.expected()
    for state in (by_socket, by_history):
        assert state.finished and state.outcome is expected.outcome
        assert _audio(state) == _audio(expected)
        assert state.error == expected.error


def test_audio_missed_on_the_socket_is_read_from_history(server: Server) -> None:
    trace = Trace("multi.json")
    trace.serve(server)
    frames = trace.frames(drop=lambda m: m["type"] == "executed")
    state = make_client(server, Sockets(FakeSocket(frames)), SOCKET).run(PROMPT, Deadline(5))
    assert state.outcome is Outcome.SUCCESS and _audio(state) == _audio(trace.expected()) and len(state.audio) == 4
    assert server.log == ["POST /prompt", f"GET /history/{trace.pid}"]


def test_silent_socket_falls_back_to_history_polling(server: Server) -> None:
    trace = Trace("load_save.json")
    trace.serve(server, NOT_YET, NOT_YET, httpx.Response(200, json=trace.history_body))
    server.on("GET", "/queue", _running(trace.pid))
    sock = FakeSocket(trace.frames()[:1])  # the greeting, then nothing
    started = time.monotonic()
    state = make_client(server, Sockets(sock)).run(PROMPT, Deadline(5))
    assert time.monotonic() - started < 0.5
    assert state.outcome is Outcome.SUCCESS and _audio(state) == [("audio", "ComfyUI_00001_.flac", "output")]
    assert len(server.calls("GET", f"/history/{trace.pid}")) == 3 and len(server.calls("GET", "/queue")) == 2
    assert sock.longest_timeout <= 1.0 and not sock.closed


@pytest.mark.parametrize("how", ["drop", "close"])
def test_dropped_socket_falls_back_to_history(how: str, server: Server) -> None:
    trace = Trace("load_save.json")
    trace.serve(server)
    first = FakeSocket(trace.frames()[:8], then=how)  # through `executing` node 1
    sockets = Sockets(first)  # the reconnect is refused
    state = make_client(server, sockets, SOCKET).run(PROMPT, Deadline(5))
    assert state.outcome is Outcome.SUCCESS and _audio(state) == [("audio", "ComfyUI_00001_.flac", "output")]
    assert first.closed and first.received == 8
    assert len(sockets.urls) >= 2  # it tried to reconnect
    assert server.log[:2] == ["POST /prompt", f"GET /history/{trace.pid}"]


def test_reconnected_socket_checks_history_at_once(server: Server) -> None:
    """Messages sent while the socket was down are lost: after a reconnect, /history is asked straight away."""
    trace = Trace("load_save.json")
    trace.serve(server)
    first, second = FakeSocket(trace.frames()[:8], then="drop"), FakeSocket()
    sockets = Sockets(first, second)
    state = make_client(server, sockets, SOCKET).run(PROMPT, Deadline(5))
    assert state.outcome is Outcome.SUCCESS and state.audio
    assert len(sockets.urls) == 2 and first.closed and not second.closed
    assert server.log == ["POST /prompt", f"GET /history/{trace.pid}"]


def test_no_socket_polls_history_with_backoff(server: Server) -> None:
    trace = Trace("load_save.json")
    trace.serve(server, NOT_YET, NOT_YET, NOT_YET, httpx.Response(200, json=trace.history_body))
    server.on("GET", "/queue", _running(trace.pid))
    sockets = Sockets(websocket.WebSocketBadStatusException("Handshake status 404", 404))
    state = make_client(server, sockets).run(PROMPT, Deadline(5))
    assert state.outcome is Outcome.SUCCESS and state.audio
    assert len(server.calls("GET", f"/history/{trace.pid}")) == 4
    assert len(sockets.urls) >= 2  # it keeps trying the socket between polls


def test_execution_error_reports_node_type_and_message(server: Server) -> None:
    trace = Trace("corrupt.json")
    state = make_client(trace.serve(server), Sockets(FakeSocket(trace.frames())), SOCKET).run(PROMPT, Deadline(5))
    assert state.outcome is Outcome.ERROR and state.error is not None
    error = outcome_error(state)
    assert isinstance(error, EngineFailed) and not isinstance(error, RetryableError) and not error.retryable
    text = str(error)
    assert "node 1 (LoadAudio)" in text and "av.error.InvalidDataError" in text
    assert "Invalid data found when processing input" in text and not text.endswith("\n")
    assert server.log == ["POST /prompt"]


@pytest.mark.parametrize("name", ["enemyx_nomodel.json", "tokenizer_missing.json"])
def test_every_recorded_execution_error_is_reported(name: str, server: Server) -> None:
    trace = Trace(name)
    recorded = next(m["data"] for m in trace.messages if m["type"] == "execution_error")
    state = make_client(trace.serve(server), Sockets(FakeSocket(trace.frames()))).run(PROMPT, Deadline(5))
    text = str(outcome_error(state))
    assert f"node {recorded['node_id']} ({recorded['node_type']})" in text
    assert recorded["exception_type"] in text and recorded["exception_message"].strip()[:60] in text


def test_interrupted_prompt_among_others_on_the_socket(server: Server) -> None:
    recorded = load_trace("interrupt.json")
    assert isinstance(recorded, dict)
    pid = recorded["pids"]["A"]
    frames = [json.dumps(e["ws"]) for e in recorded["log"] if "ws" in e]
    server.on("POST", "/prompt", httpx.Response(200, json={"prompt_id": pid, "number": 1, "node_errors": {}}))
    sock = FakeSocket(frames)
    state = make_client(server, Sockets(sock), SOCKET).run(PROMPT, Deadline(5))
    assert state.outcome is Outcome.INTERRUPTED and state.progress == (8.0, 50.0)
    assert state.interrupted is not None and state.interrupted.node_type == "ProbeSlowProgress"
    assert isinstance(outcome_error(state), JobCancelled)
    assert sock.frames  # it stopped reading at A's last word; C's messages were left


# -- the deadline and cancelling -----------------------------------------------------------


def test_deadline_expiry_abandons_the_prompt(server: Server) -> None:
    deadline = Deadline(30)

    def queue(request: httpx.Request) -> httpx.Response:
        deadline.end = time.monotonic() - 1  # the time runs out while the prompt is still queued
        return _running("p1")

    server.on("POST", "/prompt", httpx.Response(200, json={"prompt_id": "p1", "number": 1, "node_errors": {}}))
    server.on("GET", "/history/p1", NOT_YET)
    server.on("GET", "/queue", queue)
    server.on("POST", "/interrupt", httpx.Response(200))
    server.on("POST", "/queue", httpx.Response(200))
    with pytest.raises(EngineUnavailable, match="prompt p1 did not finish within 30 s") as info:
        make_client(server, Sockets(FakeSocket())).run(PROMPT, deadline)
    assert info.value.retryable
    assert server.log[-2:] == ["POST /interrupt", "POST /queue"]
    assert json.loads(server.requests[-2].content) == {"prompt_id": "p1"}
    assert json.loads(server.requests[-1].content) == {"delete": ["p1"]}


def test_short_deadline_never_waits_past_it(server: Server) -> None:
    server.on("POST", "/prompt", httpx.Response(200, json={"prompt_id": "p1"}))
    server.on("GET", "/history/p1", NOT_YET)
    server.on("GET", "/queue", _running("p1"))
    sock = FakeSocket()
    sockets = Sockets(sock)
    config = ClientConfig(poll_initial=0.5, poll_max=5.0)  # production intervals, longer than the deadline
    started = time.monotonic()
    with pytest.raises(EngineUnavailable, match="did not finish within"):
        make_client(server, sockets, config).run(PROMPT, Deadline(0.05))
    assert time.monotonic() - started < 0.5
    assert sockets.options[0]["timeout"] <= 0.05 and sock.longest_timeout <= 0.05


def test_out_of_time_before_a_call_sends_nothing(server: Server) -> None:
    client = make_client(server)
    with pytest.raises(EngineUnavailable, match="out of time before POST /prompt"):
        client.queue_prompt(PROMPT, Deadline(0))
    assert server.requests == []


def test_cancel_before_it_ran_is_job_cancelled(server: Server) -> None:
    cancel = threading.Event()
    server.on("POST", "/prompt", httpx.Response(200, json={"prompt_id": "p1"}))
    server.on("GET", "/history/p1", NOT_YET)
    server.on("GET", "/queue", EMPTY_QUEUE)
    server.on("POST", "/interrupt", httpx.Response(200))
    server.on("POST", "/queue", httpx.Response(200))
    config = ClientConfig(poll_initial=0.001, poll_max=0.002, cancel_grace=5.0)
    with pytest.raises(JobCancelled, match="cancelled before it ran"):
        make_client(server, Sockets(FakeSocket()), config).run(PROMPT, Deadline(5), cancel, lambda _: cancel.set())
    assert server.log[1:3] == ["POST /interrupt", "POST /queue"]


def test_cancel_ends_with_the_interrupt_on_the_socket(server: Server) -> None:
    cancel = threading.Event()
    pid = "p1"
    frames = [json.dumps(m) for m in (
        {"type": "execution_start", "data": {"prompt_id": pid}},
        {"type": "executing", "data": {"node": "5", "prompt_id": pid}},
        {"type": "execution_interrupted", "data": {"prompt_id": pid, "node_id": "5", "node_type": "VibeVoiceTTS"}},
        {"type": "executing", "data": {"node": None, "prompt_id": pid}},
    )]
    server.on("POST", "/prompt", httpx.Response(200, json={"prompt_id": pid}))
    server.on("POST", "/interrupt", httpx.Response(200))
    server.on("POST", "/queue", httpx.Response(200))
    config = ClientConfig(poll_initial=5.0, cancel_grace=5.0)
    state = make_client(server, Sockets(FakeSocket(frames)), config).run(PROMPT, Deadline(5), cancel,
                                                                         lambda _: cancel.set())
    assert state.outcome is Outcome.INTERRUPTED and isinstance(outcome_error(state), JobCancelled)
    assert server.log == ["POST /prompt", "POST /interrupt", "POST /queue"]


def test_cancel_not_confirmed_gives_up_after_the_grace(server: Server) -> None:
    cancel = threading.Event()
    server.on("POST", "/prompt", httpx.Response(200, json={"prompt_id": "p1"}))
    server.on("GET", "/history/p1", NOT_YET)
    server.on("GET", "/queue", _running("p1"))
    started = time.monotonic()
    with pytest.raises(JobCancelled, match="prompt p1 was cancelled"):
        make_client(server, Sockets(FakeSocket())).run(PROMPT, Deadline(30), cancel, lambda _: cancel.set())
    assert time.monotonic() - started < 0.5  # cancel_grace, not the 30 s deadline
    assert server.log.count("POST /interrupt") == 2  # on the cancel, and again when the grace ran out


# -- what the server answers ---------------------------------------------------------------

ERRORS: dict[str, Any] = load_trace("errors_out.json")  # type: ignore[assignment]


def _recorded(case: str) -> httpx.Response:
    status, body = ERRORS[case]["status"], ERRORS[case]["body"]
    if isinstance(body, str):
        return httpx.Response(status, text=body)
    return httpx.Response(status, json=body)


@pytest.mark.parametrize("case", sorted(k for k, v in ERRORS.items() if v["status"] == 400))
def test_recorded_rejections_are_permanent_and_name_node_and_message(case: str, server: Server) -> None:
    server.on("POST", "/prompt", _recorded(case))
    with pytest.raises(PromptRejected) as info:
        make_client(server).queue_prompt(PROMPT, Deadline(5))
    error = info.value
    assert isinstance(error, EngineFailed) and not isinstance(error, RetryableError) and not error.retryable
    body = ERRORS[case]["body"]
    parsed = json.loads(body) if isinstance(body, str) else body
    assert error.body == parsed
    assert str(error).startswith(f"ComfyUI rejected the prompt: {parsed['error']['type']}: ")
    for node_id, node in parsed["node_errors"].items():
        assert f"node {node_id} ({node['class_type']})" in str(error)
        assert all(e["message"] in str(error) for e in node["errors"])
    assert error.node_classes() == {n["class_type"] for n in parsed["node_errors"].values()}
    assert len(server.requests) == 1


@pytest.mark.parametrize("case", sorted(k for k, v in ERRORS.items() if v["status"] == 500))
def test_recorded_server_errors_are_retryable(case: str, server: Server) -> None:
    server.on("POST", "/prompt", _recorded(case))
    with pytest.raises(EngineUnavailable, match="POST /prompt answered 500: 500 Internal Server Error") as info:
        make_client(server).queue_prompt(PROMPT, Deadline(5))
    assert info.value.retryable and not isinstance(info.value, ComfyUnreachable)


def test_accepted_prompt_returns_its_id(server: Server) -> None:
    server.on("POST", "/prompt", _recorded("subfolder_file"))
    assert make_client(server).queue_prompt(PROMPT, Deadline(5)) == ERRORS["subfolder_file"]["body"]["prompt_id"]


def test_other_refusal_of_a_prompt_is_permanent(server: Server) -> None:
    server.on("POST", "/prompt", httpx.Response(403, text="forbidden"))
    with pytest.raises(EngineFailed, match="answered 403: forbidden") as info:
        make_client(server).queue_prompt(PROMPT, Deadline(5))
    assert not info.value.retryable and not isinstance(info.value, EngineUnavailable)


@pytest.mark.parametrize(
    ("failure", "kind", "message"),
    [
        (httpx.ConnectError("[Errno 111] Connection refused"), ComfyUnreachable,
         r"is unreachable \(connection refused\); start the server"),
        (httpx.ConnectError("[Errno -2] Name or service not known"), ComfyUnreachable,
         r"unreachable \(name or service not known\)"),
        (httpx.ConnectTimeout("timed out"), ComfyUnreachable, r"unreachable \(no answer within 0.5 s\)"),
        (httpx.ReadTimeout("timed out"), EngineUnavailable, "POST /prompt timed out after 1.0 s"),
        (httpx.RemoteProtocolError("Server disconnected"), EngineUnavailable, "POST /prompt failed"),
        (httpx.Response(500, text="boom"), EngineUnavailable, "answered 500: boom"),
        (httpx.Response(502, text="Bad Gateway"), EngineUnavailable, "answered 502: Bad Gateway"),
        (httpx.Response(503, text=""), EngineUnavailable, "answered 503"),
    ],
    ids=["refused", "no-such-host", "connect-timeout", "read-timeout", "disconnected", "500", "502", "503"],
)
def test_transport_failures_and_5xx_are_retryable(failure: Answer, kind: type[Exception], message: str,
                                                  server: Server) -> None:
    server.on("POST", "/prompt", failure)
    with pytest.raises(EngineUnavailable, match=message) as info:
        make_client(server).queue_prompt(PROMPT, Deadline(5))
    assert type(info.value) is kind and isinstance(info.value, RetryableError) and info.value.retryable
    if isinstance(failure, BaseException):
        assert info.value.__cause__ is failure


def test_read_timeout_is_capped_by_the_deadline(server: Server) -> None:
    seen: list[Any] = []

    def hang(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        raise httpx.ReadTimeout("timed out", request=request)

    server.on("GET", "/system_stats", hang)
    with pytest.raises(EngineUnavailable, match=r"timed out after 0\.[12] s"):
        make_client(server).system_stats(Deadline(0.2))
    assert 0 < seen[0]["read"] <= 0.2


def test_non_json_answer_is_retryable(server: Server) -> None:
    server.on("GET", "/system_stats", httpx.Response(200, text="<html>proxy</html>"))
    with pytest.raises(EngineUnavailable, match="answered non-JSON: <html>proxy</html>"):
        make_client(server).system_stats()


def test_wait_ready_answers_at_once_or_says_unreachable(server: Server) -> None:
    server.on("GET", "/system_stats", httpx.Response(200, json={"system": {"comfyui_version": "0.3.60"}}))
    assert make_client(server).wait_ready(Deadline(5))["system"]["comfyui_version"] == "0.3.60"
    down = Server().on("GET", "/system_stats", httpx.ConnectError("[Errno 111] Connection refused"))
    started = time.monotonic()
    with pytest.raises(ComfyUnreachable, match=r"\(connection refused\): not ready after 0 s; start the server"):
        make_client(down).wait_ready(Deadline(0.05))
    assert time.monotonic() - started < 0.5 and len(down.requests) == 1


def test_lost_prompt_is_retryable(server: Server) -> None:
    server.on("POST", "/prompt", httpx.Response(200, json={"prompt_id": "p1"}))
    server.on("GET", "/history/p1", NOT_YET)
    server.on("GET", "/queue", EMPTY_QUEUE)
    with pytest.raises(PromptLost, match="lost prompt p1") as info:
        make_client(server).run(PROMPT, Deadline(5))
    assert info.value.retryable and isinstance(info.value, EngineUnavailable)
    assert server.log == ["POST /prompt", "GET /history/p1", "GET /queue", "GET /history/p1"]


def test_prompt_finishing_between_history_and_queue_is_not_lost(server: Server) -> None:
    trace = Trace("load_save.json")
    trace.serve(server, NOT_YET, httpx.Response(200, json=trace.history_body))
    server.on("GET", "/queue", EMPTY_QUEUE)
    state = make_client(server).check(trace.pid, Deadline(5))
    assert state is not None and state.outcome is Outcome.SUCCESS and state.audio


def test_polling_an_unreachable_server_gives_up_after_unreachable_timeout(server: Server) -> None:
    server.on("POST", "/prompt", httpx.Response(200, json={"prompt_id": "p1"}))
    server.on("GET", "/history/p1", httpx.ConnectError("[Errno 111] Connection refused"))
    config = ClientConfig(poll_initial=0.001, poll_max=0.002, unreachable_timeout=0.0)
    with pytest.raises(ComfyUnreachable, match="connection refused"):
        make_client(server, config=config).run(PROMPT, Deadline(5))
    assert len(server.calls("GET", "/history/p1")) == 2  # one failure is borne, the next past the timeout is not


# -- uploads, /view, models --------------------------------------------------------------------


def test_voice_upload_is_named_by_content_and_reused(server: Server) -> None:
    def stored(request: httpx.Request) -> httpx.Response:
        body = request.read()
        name = body.split(b'filename="', 1)[1].split(b'"', 1)[0].decode()
        return httpx.Response(200, json={"name": name, "subfolder": "narrator", "type": "input"})

    server.on("POST", "/upload/image", stored)
    client = make_client(server)
    voice, other = b"RIFF voice one", b"RIFF voice two"
    digest = hashlib.sha256(voice).hexdigest()
    assert client.upload_voice(voice) == f"narrator/{digest}.wav"
    body = server.requests[0].read()
    assert f'name="image"; filename="{digest}.wav"'.encode() in body and voice in body
    for field, value in (("type", "input"), ("subfolder", "narrator"), ("overwrite", "true")):
        assert f'name="{field}"\r\n\r\n{value}\r\n'.encode() in body
    assert client.upload_voice(voice) == f"narrator/{digest}.wav"
    assert len(server.requests) == 1  # the same bytes: not sent again
    assert client.upload_voice(other) == f"narrator/{hashlib.sha256(other).hexdigest()}.wav"
    assert len(server.requests) == 2
    assert client.forget_uploads([f"narrator/{digest}.wav"]) and not client.forget_uploads(["narrator/none.wav"])
    client.upload_voice(voice)
    assert len(server.requests) == 3  # forgotten (the server lost it): uploaded again


def test_upload_names_what_the_server_stored(server: Server) -> None:
    renamed = {"name": "a (1).wav", "subfolder": "", "type": "input"}
    server.on("POST", "/upload/image", httpx.Response(200, json=renamed))
    assert make_client(server).upload(b"data", "a.wav", overwrite=False) == "a (1).wav"
    assert b'name="overwrite"' not in server.requests[0].read()


def test_refused_upload_is_permanent(server: Server) -> None:
    server.on("POST", "/upload/image", httpx.Response(400, text="bad file"))
    with pytest.raises(EngineFailed, match="refused the upload of a.wav: 400 bad file") as info:
        make_client(server).upload(b"data", "a.wav")
    assert not info.value.retryable


def test_view_fetches_the_file_by_name_folder_and_type(server: Server) -> None:
    server.on("GET", "/view", httpx.Response(200, content=b"fLaC..."))
    file = OutputFile("chunk_00001_.flac", "audio", "output", "6")
    assert make_client(server).view(file) == b"fLaC..."
    assert dict(server.requests[0].url.params) == {"filename": "chunk_00001_.flac", "subfolder": "audio",
                                                   "type": "output"}


def test_view_404_is_retryable_and_names_the_file(server: Server) -> None:
    server.on("GET", "/view", httpx.Response(404))
    with pytest.raises(EngineUnavailable, match="has no audio/chunk_00001_.flac") as info:
        make_client(server).view(OutputFile("chunk_00001_.flac", "audio"))
    assert info.value.retryable


def test_view_other_refusal_is_permanent(server: Server) -> None:
    server.on("GET", "/view", httpx.Response(403))
    with pytest.raises(EngineFailed, match="/view x.flac answered 403") as info:
        make_client(server).view(OutputFile("x.flac"))
    assert not info.value.retryable


def test_models_and_object_info(server: Server) -> None:
    server.on("GET", "/models/vibevoice", httpx.Response(200, json=["VibeVoice-Large", "VibeVoice-1.5B"]))
    server.on("GET", "/models/a/b", httpx.Response(200, json={"not": "a list"}))
    server.on("GET", "/object_info", httpx.Response(200, json={"LoadAudio": {"input": {}}}))
    client = make_client(server)
    assert client.models("vibevoice") == ["VibeVoice-Large", "VibeVoice-1.5B"]
    assert client.models("nothing") is None
    with pytest.raises(EngineUnavailable, match="is not a list of files"):
        client.models("a/b")
    assert server.requests[-1].url.raw_path == b"/models/a%2Fb"  # one path segment, quoted
    assert client.object_info() == {"LoadAudio": {"input": {}}}
    server.on("GET", "/object_info", httpx.Response(500, text="oops"))
    with pytest.raises(EngineUnavailable, match="answered 500"):
        client.object_info()


# -- interrupt, abandon, housekeeping --------------------------------------------------------


def test_interrupt_abandon_free_and_deletes_send_the_right_calls(server: Server) -> None:
    for path in ("/interrupt", "/queue", "/free", "/history"):
        server.on("POST", path, httpx.Response(200))
    client = make_client(server)
    client.interrupt("p1")
    client.interrupt()
    client.abandon("p2")
    client.free(unload_models=True)
    client.delete_history(["p3"])
    sent = [(f"{r.method} {r.url.path}", json.loads(r.content)) for r in server.requests]
    assert sent == [
        ("POST /interrupt", {"prompt_id": "p1"}),
        ("POST /interrupt", {}),
        ("POST /interrupt", {"prompt_id": "p2"}),
        ("POST /queue", {"delete": ["p2"]}),
        ("POST /free", {"unload_models": True, "free_memory": True}),
        ("POST /history", {"delete": ["p3"]}),
    ]
    assert all(r.extensions["timeout"]["read"] <= 5.0 for r in server.requests)


@pytest.mark.parametrize("failure", [httpx.ConnectError("[Errno 111] Connection refused"),
                                     httpx.ReadTimeout("timed out"), httpx.Response(500, text="boom")],
                         ids=["refused", "timeout", "500"])
def test_housekeeping_failures_are_logged_not_raised(failure: Answer, server: Server,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    for path in ("/interrupt", "/queue", "/free"):
        server.on("POST", path, failure)
    client = make_client(server)
    with caplog.at_level(logging.WARNING, logger="narrator.comfy.client"):
        client.abandon("p1")
        client.free()
    assert [r.getMessage() for r in caplog.records] == ["ComfyUI call failed"] * 3
    assert [getattr(r, "call", None) for r in caplog.records] == ["POST /interrupt", "POST /queue", "POST /free"]


def test_socket_url_follows_the_scheme_and_defaults_are_the_real_ones() -> None:
    secure = make_client(Server(), base_url="https://comfy.test/")
    assert secure.ws_url == "wss://comfy.test/ws?clientId=unit"
    plain = ComfyClient(BASE)
    try:
        assert plain._connect_ws is websocket.create_connection
        assert isinstance(plain._http._transport, httpx.HTTPTransport)
    finally:
        plain.close()
