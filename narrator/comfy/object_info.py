"""``/object_info`` and prompt validation the way ComfyUI does it.

The validator mirrors ComfyUI's ``execution.validate_prompt``: the same checks in
the same order, with the same error types and shapes, so that a workflow that
passes here passes on the server (and the test fake answers like the server).
It is pure: node classes, custom validators and server state come in as data.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from ..errors import ModelError

ObjectInfo = Mapping[str, Any]
Prompt = Mapping[str, Any]
Reason = dict[str, Any]

#: Combo inputs whose options list the server's folders at the time of the call
#: (uploaded files, installed models): a stored workflow cannot be checked against
#: someone else's snapshot of them, so offline checks only require a string.
STATEFUL_INPUTS: frozenset[tuple[str, str]] = frozenset(
    {
        ("LoadAudio", "audio"),
        ("VibeVoiceSingleSpeakerNode", "model"),
        ("VibeVoiceMultipleSpeakersNode", "model"),
        ("VibeVoiceLoRANode", "lora_name"),
        ("LoadTextFromFileNode", "file"),
    }
)


@cache
def packaged() -> dict[str, Any]:
    """The ``/object_info`` snapshot shipped with narrator (audio and VibeVoice nodes)."""
    try:
        text = resources.files("narrator.comfy").joinpath("object_info.json").read_text(encoding="utf-8")
        data = json.loads(text)
    except (OSError, ValueError) as exc:
        raise ModelError(f"the packaged object_info.json is unreadable: {exc}") from exc
    return {k: v for k, v in data.items() if isinstance(v, dict)}


@dataclass(frozen=True)
class InputSpec:
    name: str
    type: str | list[Any]
    """A type name (``INT``, ``AUDIO``, ...) or, for a combo, its list of options."""
    options: Mapping[str, Any]
    category: str
    """``required`` or ``optional``."""

    @property
    def config(self) -> list[Any]:
        """The ``input_config`` ComfyUI puts in its error reports."""
        return [self.type, dict(self.options)]


def node_inputs(info: ObjectInfo, class_type: str) -> dict[str, InputSpec]:
    """Required and optional inputs of a node class (hidden ones are the server's business)."""
    node = info.get(class_type)
    if not isinstance(node, Mapping):
        return {}
    out: dict[str, InputSpec] = {}
    for category in ("required", "optional"):
        for name, spec in (node.get("input", {}).get(category) or {}).items():
            kind = spec[0] if spec else "*"
            options = spec[1] if len(spec) > 1 and isinstance(spec[1], Mapping) else {}
            out[name] = InputSpec(name, kind, options, category)
    return out


def output_types(info: ObjectInfo, class_type: str) -> list[str]:
    node = info.get(class_type)
    return list(node.get("output", [])) if isinstance(node, Mapping) else []


def is_output_node(info: ObjectInfo, class_type: str) -> bool:
    node = info.get(class_type)
    return bool(isinstance(node, Mapping) and node.get("output_node"))


def check_value(spec: InputSpec, value: Any, *, check_list: bool = True) -> tuple[Any, Reason | None]:
    """Convert a widget value like ComfyUI does; the converted value, or the reason it fails."""
    name, kind = spec.name, spec.type
    converters: dict[str, Callable[[Any], Any]] = {"INT": int, "FLOAT": float, "STRING": str, "BOOLEAN": bool}
    if isinstance(kind, str) and kind in converters:
        try:
            value = converters[kind](value)
        except (TypeError, ValueError, OverflowError) as exc:
            return value, {
                "type": "invalid_input_type",
                "message": f"Failed to convert an input value to a {kind} value",
                "details": f"{name}, {value}, {exc}",
                "extra_info": {
                    "input_name": name,
                    "input_config": spec.config,
                    "received_value": value,
                    "exception_message": str(exc),
                },
            }
    if not check_list:
        return value, None
    lo, hi = spec.options.get("min"), spec.options.get("max")
    try:
        if lo is not None and value < lo:
            message = f"Value {value} smaller than min of {lo}"
            return value, _range_reason("value_smaller_than_min", message, spec, value)
        if hi is not None and value > hi:
            message = f"Value {value} bigger than max of {hi}"
            return value, _range_reason("value_bigger_than_max", message, spec, value)
    except TypeError:
        pass  # ComfyUI compares only what it converted; other types fail later, in the node.
    if isinstance(kind, list) and value not in kind:
        big = len(kind) > 20
        listing = f"(list of length {len(kind)})" if big else str(kind)
        return value, {
            "type": "value_not_in_list",
            "message": "Value not in list",
            "details": f"{name}: '{value}' not in {listing}",
            "extra_info": {"input_name": name, "input_config": None if big else spec.config, "received_value": value},
        }
    return value, None


def _range_reason(kind: str, message: str, spec: InputSpec, value: Any) -> Reason:
    return {
        "type": kind,
        "message": message,
        "details": spec.name,
        "extra_info": {"input_name": spec.name, "input_config": spec.config, "received_value": value},
    }


CustomCheck = Callable[[Mapping[str, Any]], "bool | str"]


@dataclass(frozen=True)
class CustomValidator:
    """A node's ``VALIDATE_INPUTS``: the inputs it takes skip the generic range and list checks."""

    inputs: tuple[str, ...]
    check: CustomCheck


@dataclass(frozen=True)
class Validation:
    ok: bool
    error: Reason | None
    good_outputs: list[str]
    node_errors: dict[str, Any]

    def response(self) -> dict[str, Any]:
        """The body of ComfyUI's 400 answer to ``POST /prompt``."""
        return {"error": self.error, "node_errors": self.node_errors}


@dataclass
class _Run:
    prompt: Prompt
    info: ObjectInfo
    custom: Mapping[str, CustomValidator]
    validated: dict[str, tuple[bool, list[Reason], str]] = field(default_factory=dict)


def validate_prompt(
    prompt: Prompt,
    info: ObjectInfo,
    custom: Mapping[str, CustomValidator] | None = None,
    partial: Iterable[str] | None = None,
) -> Validation:
    """ComfyUI's validate_prompt over plain data. ``custom`` maps class_type to its custom validator."""
    outputs: list[str] = []
    targets = set(partial) if partial is not None else None
    for node_id, node in prompt.items():
        if not isinstance(node, Mapping) or "class_type" not in node:
            return _invalid("Cannot execute because a node is missing the class_type property.", node_id)
        class_type = node["class_type"]
        if class_type not in info:
            return _invalid(f"Cannot execute because node {class_type} does not exist.", node_id)
        if is_output_node(info, class_type) and (targets is None or node_id in targets):
            outputs.append(node_id)
    if not outputs:
        error = {"type": "prompt_no_outputs", "message": "Prompt has no outputs", "details": "", "extra_info": {}}
        return Validation(False, error, [], {})
    run = _Run(prompt, info, custom or {})
    good: list[str] = []
    failed: list[tuple[str, list[Reason]]] = []
    node_errors: dict[str, Any] = {}
    for out in outputs:
        try:
            valid, reasons, _ = _validate_node(run, out)
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            # ComfyUI reports a crash inside validation (a link to a missing node) this way.
            valid, reasons = False, [_exception_reason(exc)]
            run.validated[out] = (False, reasons, out)
        if valid:
            good.append(out)
            continue
        failed.append((out, reasons))
        for node_id, (ok, node_reasons, _) in run.validated.items():
            if ok or not node_reasons:
                continue
            entry = node_errors.setdefault(
                node_id,
                {"errors": node_reasons, "dependent_outputs": [], "class_type": prompt[node_id]["class_type"]},
            )
            entry["dependent_outputs"].append(out)
    if not good:
        details = "\n".join(f"{r['message']}: {r['details']}" for _, reasons in failed for r in reasons)
        error = {
            "type": "prompt_outputs_failed_validation",
            "message": "Prompt outputs failed validation",
            "details": details,
            "extra_info": {},
        }
        return Validation(False, error, [], node_errors)
    return Validation(True, None, good, node_errors)


def _invalid(message: str, node_id: str) -> Validation:
    error = {"type": "invalid_prompt", "message": message, "details": f"Node ID '#{node_id}'", "extra_info": {}}
    return Validation(False, error, [], {})


def _exception_reason(exc: BaseException) -> Reason:
    return {
        "type": "exception_during_validation",
        "message": "Exception when validating node",
        "details": str(exc),
        "extra_info": {"exception_type": type(exc).__name__, "traceback": traceback.format_tb(exc.__traceback__)},
    }


def _validate_node(run: _Run, node_id: str) -> tuple[bool, list[Reason], str]:
    if node_id in run.validated:
        return run.validated[node_id]
    node = run.prompt[node_id]
    class_type = node["class_type"]
    inputs = dict(node.get("inputs") or {})
    validator = run.custom.get(class_type)
    takes = set(validator.inputs) if validator else set()
    errors: list[Reason] = []
    valid = True
    for name, spec in node_inputs(run.info, class_type).items():
        if name not in inputs:
            if spec.category == "required":
                errors.append(
                    {
                        "type": "required_input_missing",
                        "message": "Required input is missing",
                        "details": name,
                        "extra_info": {"input_name": name},
                    }
                )
            continue
        value = inputs[name]
        if isinstance(value, list):
            reason, upstream_ok = _check_link(run, spec, value)
            if reason:
                errors.append(reason)
            valid = valid and upstream_ok
            continue
        _, reason = check_value(spec, value, check_list=name not in takes)
        if reason:
            errors.append(reason)
    if validator:
        errors.extend(_custom(validator, inputs))
    result = (not errors and valid, errors, node_id)
    run.validated[node_id] = result
    return result


def _check_link(run: _Run, spec: InputSpec, link: list[Any]) -> tuple[Reason | None, bool]:
    if len(link) != 2:
        return {
            "type": "bad_linked_input",
            "message": "Bad linked input, must be a length-2 list of [node_id, slot_index]",
            "details": spec.name,
            "extra_info": {"input_name": spec.name, "input_config": spec.config, "received_value": link},
        }, True
    source = run.prompt[link[0]]  # KeyError for a missing node, as in ComfyUI
    received = output_types(run.info, source["class_type"])[link[1]]
    if not _types_match(received, spec.type):
        return {
            "type": "return_type_mismatch",
            "message": "Return type mismatch between linked nodes",
            "details": f"{spec.name}, received_type({received}) mismatch input_type({spec.type})",
            "extra_info": {
                "input_name": spec.name,
                "input_config": spec.config,
                "received_type": received,
                "linked_node": link,
            },
        }, True
    ok, _, _ = _validate_node(run, str(link[0]))
    return None, ok


def _types_match(received: Any, wanted: Any) -> bool:
    if isinstance(wanted, list):
        return received == "COMBO" or isinstance(received, list)
    if received == "*" or wanted == "*":
        return True
    got = {t.strip() for t in str(received).split(",")}
    want = {t.strip() for t in str(wanted).split(",")}
    return bool(got & want)


def _custom(validator: CustomValidator, inputs: Mapping[str, Any]) -> list[Reason]:
    values = {k: inputs[k] for k in validator.inputs if k in inputs and not isinstance(inputs[k], list)}
    result = validator.check(values)
    if result is True:
        return []
    name = validator.inputs[0] if validator.inputs else ""
    details = name if result is False else f"{name} - {result}"
    return [
        {
            "type": "custom_validation_failed",
            "message": "Custom validation failed for node",
            "details": details,
            "extra_info": {"input_name": name},
        }
    ]


def with_state(info: ObjectInfo, lists: Mapping[tuple[str, str], list[str]]) -> dict[str, Any]:
    """A copy of ``info`` whose stateful combo lists show a server's current folders."""
    out: dict[str, Any] = json.loads(json.dumps(dict(info)))
    for (class_type, name), values in lists.items():
        node = out.get(class_type)
        if not node:
            continue
        for category in ("required", "optional"):
            spec = node.get("input", {}).get(category, {}).get(name)
            if spec is not None:
                spec[0] = list(values)
    return out


def offline_validators() -> dict[str, CustomValidator]:
    """Stand-ins for server-side checks that need the server's folders: accept any safe file name."""

    def loadaudio(values: Mapping[str, Any]) -> bool | str:
        name = str(values.get("audio", ""))
        if not name or name.startswith("/") or ".." in name:
            return f"Invalid audio file: {name}"
        return True

    return {"LoadAudio": CustomValidator(("audio",), loadaudio)}


def offline_info(info: ObjectInfo) -> dict[str, Any]:
    """``info`` with stateful combo lists opened up, so only their type (a string) is checked."""
    out: dict[str, Any] = json.loads(json.dumps(dict(info)))
    for class_type, name in STATEFUL_INPUTS:
        for category in ("required", "optional"):
            spec = out.get(class_type, {}).get("input", {}).get(category, {}).get(name)
            if spec is not None:
                spec[0] = "STRING"
    return out
