"""ComfyUI: the HTTP + websocket client, message parsing, and workflow binding.

No Celery here: the GPU worker's task calls the engine, the engine calls this.
"""

from __future__ import annotations

from .client import ClientConfig, ComfyClient, Deadline, PromptLost, PromptRejected, outcome_error
from .messages import Outcome, OutputFile, PromptState, advance, from_history, parse_message, pick_audio, track
from .workflow import bind, check_model, find_node, load_workflow, prune, resolve_bindings, validate_workflow

__all__ = [
    "ClientConfig",
    "ComfyClient",
    "Deadline",
    "Outcome",
    "OutputFile",
    "PromptLost",
    "PromptRejected",
    "PromptState",
    "advance",
    "bind",
    "check_model",
    "find_node",
    "from_history",
    "load_workflow",
    "outcome_error",
    "parse_message",
    "pick_audio",
    "prune",
    "resolve_bindings",
    "track",
    "validate_workflow",
]
