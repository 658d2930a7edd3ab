"""What ComfyUI says about a prompt, as typed events, and where a prompt stands.

Pure: websocket frames and ``/history`` entries go in, events and a
:class:`PromptState` come out. The client feeds them; the tests replay the
recorded traces through the same functions.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any


@dataclass(frozen=True)
class OutputFile:
    """One file a node wrote, as ``/view`` wants it."""

    filename: str
    subfolder: str = ""
    type: str = "output"
    node: str = ""

    @property
    def extension(self) -> str:
        return self.filename.rsplit(".", 1)[-1].lower() if "." in self.filename else ""


# -- events ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Status:
    queue_remaining: int | None
    sid: str | None = None


@dataclass(frozen=True)
class ExecutionStart:
    prompt_id: str


@dataclass(frozen=True)
class ExecutionCached:
    prompt_id: str
    nodes: tuple[str, ...]


@dataclass(frozen=True)
class Executing:
    prompt_id: str
    node: str | None
    """``None``: the prompt is finished, whatever the outcome."""


@dataclass(frozen=True)
class Progress:
    prompt_id: str
    node: str | None
    value: float
    max: float


@dataclass(frozen=True)
class ProgressState:
    prompt_id: str
    nodes: Mapping[str, Any]


@dataclass(frozen=True)
class Executed:
    prompt_id: str
    node: str
    audio: tuple[OutputFile, ...]


@dataclass(frozen=True)
class ExecutionSuccess:
    prompt_id: str


@dataclass(frozen=True)
class ExecutionError:
    prompt_id: str
    node_id: str
    node_type: str
    exception_type: str
    exception_message: str


@dataclass(frozen=True)
class ExecutionInterrupted:
    prompt_id: str
    node_id: str
    node_type: str


@dataclass(frozen=True)
class Other:
    """Anything else: unknown types, binary preview frames, malformed frames."""

    type: str
    data: Any = None


Event = (
    Status
    | ExecutionStart
    | ExecutionCached
    | Executing
    | Progress
    | ProgressState
    | Executed
    | ExecutionSuccess
    | ExecutionError
    | ExecutionInterrupted
    | Other
)


def parse_message(raw: str | bytes | Mapping[str, Any]) -> Event:
    """One websocket frame (or an already decoded ``{"type", "data"}``) as an event."""
    if isinstance(raw, bytes | bytearray):
        return Other("binary")
    message: Any = raw
    if isinstance(raw, str):
        try:
            message = json.loads(raw)
        except ValueError:
            return Other("malformed", raw[:200])
    if not isinstance(message, Mapping) or not isinstance(message.get("type"), str):
        return Other("malformed", message)
    kind = message["type"]
    data = message.get("data")
    if not isinstance(data, Mapping):
        return Other(kind, data)
    return parse_event(kind, data)


def parse_event(kind: str, data: Mapping[str, Any]) -> Event:
    pid = str(data.get("prompt_id") or "")
    if kind == "status":
        info = (data.get("status") or {}).get("exec_info") or {}
        remaining = info.get("queue_remaining")
        return Status(remaining if isinstance(remaining, int) else None, data.get("sid"))
    if kind == "execution_start":
        return ExecutionStart(pid)
    if kind == "execution_cached":
        return ExecutionCached(pid, tuple(str(n) for n in data.get("nodes") or ()))
    if kind == "executing":
        node = data.get("node")
        return Executing(pid, None if node is None else str(node))
    if kind == "progress":
        node = data.get("node")
        return Progress(pid, None if node is None else str(node), _num(data.get("value")), _num(data.get("max")))
    if kind == "progress_state":
        return ProgressState(pid, data.get("nodes") or {})
    if kind == "executed":
        node = str(data.get("node") or "")
        return Executed(pid, node, audio_files(data.get("output"), node))
    if kind == "execution_success":
        return ExecutionSuccess(pid)
    if kind == "execution_error":
        return ExecutionError(
            pid,
            str(data.get("node_id") or ""),
            str(data.get("node_type") or ""),
            str(data.get("exception_type") or ""),
            str(data.get("exception_message") or "").strip(),
        )
    if kind == "execution_interrupted":
        return ExecutionInterrupted(pid, str(data.get("node_id") or ""), str(data.get("node_type") or ""))
    return Other(kind, dict(data))


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def audio_files(output: Any, node: str = "") -> tuple[OutputFile, ...]:
    """The files under a node output's ``audio`` key: any node that saves audio, by its output, not its name."""
    if not isinstance(output, Mapping):
        return ()
    files = []
    for item in output.get("audio") or ():
        if isinstance(item, Mapping) and isinstance(item.get("filename"), str) and item["filename"]:
            files.append(
                OutputFile(item["filename"], str(item.get("subfolder") or ""), str(item.get("type") or "output"), node)
            )
    return tuple(files)


# -- one prompt's state ------------------------------------------------------------


class Outcome(Enum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    ERROR = "error"
    INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class PromptState:
    prompt_id: str
    outcome: Outcome = Outcome.PENDING
    finished: bool = False
    """The last word was said (``executing`` with ``node: null``, or a history entry)."""
    cached: tuple[str, ...] = ()
    node: str | None = None
    progress: tuple[float, float] | None = None
    outputs: Mapping[str, tuple[OutputFile, ...]] = field(default_factory=dict)
    error: ExecutionError | None = None
    interrupted: ExecutionInterrupted | None = None

    @property
    def audio(self) -> list[OutputFile]:
        return [f for files in self.outputs.values() for f in files]


def advance(state: PromptState, event: Event) -> PromptState:
    """The state after one event; events about other prompts change nothing."""
    if getattr(event, "prompt_id", None) != state.prompt_id or state.finished:
        return state
    if isinstance(event, ExecutionStart):
        return replace(state, outcome=_running(state))
    if isinstance(event, ExecutionCached):
        return replace(state, outcome=_running(state), cached=event.nodes)
    if isinstance(event, Executing):
        if event.node is None:
            outcome = Outcome.SUCCESS if state.outcome in (Outcome.PENDING, Outcome.RUNNING) else state.outcome
            return replace(state, finished=True, node=None, outcome=outcome)
        return replace(state, outcome=_running(state), node=event.node)
    if isinstance(event, Progress):
        return replace(state, progress=(event.value, event.max))
    if isinstance(event, Executed):
        if not event.audio:
            return state
        return replace(state, outputs={**state.outputs, event.node: event.audio})
    if isinstance(event, ExecutionSuccess):
        return replace(state, outcome=Outcome.SUCCESS)
    if isinstance(event, ExecutionError):
        return replace(state, outcome=Outcome.ERROR, error=event)
    if isinstance(event, ExecutionInterrupted):
        return replace(state, outcome=Outcome.INTERRUPTED, interrupted=event)
    return state


def _running(state: PromptState) -> Outcome:
    return Outcome.RUNNING if state.outcome is Outcome.PENDING else state.outcome


def track(prompt_id: str, events: Iterable[Event]) -> PromptState:
    state = PromptState(prompt_id)
    for event in events:
        state = advance(state, event)
    return state


def from_history(prompt_id: str, answer: Mapping[str, Any]) -> PromptState | None:
    """The state a ``GET /history/{id}`` answer shows; ``None`` while the prompt is not done."""
    entry = answer.get(prompt_id) if isinstance(answer, Mapping) else None
    if not isinstance(entry, Mapping):
        return None
    status = entry.get("status") or {}
    events = [parse_event(str(m[0]), m[1]) for m in status.get("messages") or () if _is_message(m)]
    state = track(prompt_id, events)
    outputs = {
        str(node): files
        for node, output in (entry.get("outputs") or {}).items()
        if (files := audio_files(output, str(node)))
    }
    outcome = state.outcome
    if outcome in (Outcome.PENDING, Outcome.RUNNING):
        outcome = Outcome.SUCCESS if status.get("status_str") == "success" else Outcome.ERROR
    return replace(state, outcome=outcome, finished=True, outputs=outputs)


def _is_message(item: Any) -> bool:
    return isinstance(item, list | tuple) and len(item) == 2 and isinstance(item[1], Mapping)


def in_queue(prompt_id: str, answer: Mapping[str, Any]) -> bool:
    """Whether a ``GET /queue`` answer holds the prompt, running or pending."""
    for key in ("queue_running", "queue_pending"):
        for item in answer.get(key) or ():
            if isinstance(item, list | tuple) and len(item) > 1 and item[1] == prompt_id:
                return True
    return False


def describe_rejection(body: Any) -> str:
    """A ``POST /prompt`` 400 answer in one line, naming each failing node, its class and the reason."""
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return body.strip()[:500] or "rejected"
    if not isinstance(body, Mapping):
        return "rejected"
    found = body.get("error")
    error: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    head = str(error.get("message") or "rejected")
    if error.get("type"):
        head = f"{error['type']}: {head}"
    parts = []
    for node_id, info in (body.get("node_errors") or {}).items():
        if not isinstance(info, Mapping):
            continue
        for err in info.get("errors") or ():
            if isinstance(err, Mapping):
                where = f"node {node_id} ({info.get('class_type', '?')})"
                parts.append(f"{where}: {err.get('message')}: {err.get('details')}")
    if not parts and error.get("details"):
        parts.append(str(error["details"]))
    return "; ".join([head, *parts])


_LOSSLESS = ("flac", "wav")


def pick_audio(files: Iterable[OutputFile]) -> OutputFile | None:
    """The one file a chunk is: saved output before previews (``temp``), lossless before lossy, then first."""
    ranked = sorted(
        enumerate(files),
        key=lambda item: (item[1].type != "output", item[1].extension not in _LOSSLESS, item[0]),
    )
    return ranked[0][1] if ranked else None
