"""API-format workflows: load, bind job parameters to nodes, validate against ``/object_info``.

Pure. A binding names a node by its ``_meta.title``, else by a class_type that is
unique in the workflow, never by node id, so a re-exported workflow keeps working.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidRequest, ModelError
from ..models import CONTENT_PARAMS, ModelSpec
from .object_info import (
    ObjectInfo,
    check_value,
    node_inputs,
    offline_info,
    offline_validators,
    validate_prompt,
)

Workflow = dict[str, Any]


def load_workflow(path: Path) -> Workflow:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path.name}: cannot read workflow: {exc}") from exc
    return check_shape(data, path.name)


def check_shape(data: Any, name: str) -> Workflow:
    """An API-format graph: ``{id: {"class_type", "inputs", "_meta"}}``."""
    if isinstance(data, Mapping) and "nodes" in data and "links" in data:
        raise ModelError(f"{name}: this is the editor format; export the workflow with 'Save (API)'")
    if not isinstance(data, Mapping) or not data:
        raise ModelError(f"{name}: a workflow is a JSON object of nodes")
    for node_id, node in data.items():
        if not isinstance(node, Mapping) or not isinstance(node.get("class_type"), str):
            raise ModelError(f"{name}: node {node_id} has no class_type")
        if not isinstance(node.get("inputs", {}), Mapping):
            raise ModelError(f"{name}: node {node_id} has no inputs object")
    return dict(data)


def title(node: Mapping[str, Any]) -> str | None:
    meta = node.get("_meta")
    return meta.get("title") if isinstance(meta, Mapping) else None


def find_node(workflow: Mapping[str, Any], ref: str) -> str:
    """The id of the node titled ``ref``, else of the one node whose class_type is ``ref``."""
    titled = [nid for nid, node in workflow.items() if title(node) == ref]
    if len(titled) == 1:
        return titled[0]
    if len(titled) > 1:
        raise LookupError(f"{len(titled)} nodes are titled {ref!r} ({', '.join(sorted(titled))})")
    typed = [nid for nid, node in workflow.items() if node.get("class_type") == ref]
    if len(typed) == 1:
        return typed[0]
    if len(typed) > 1:
        raise LookupError(f"class_type {ref!r} is not unique (nodes {', '.join(sorted(typed))}); give the node a title")
    raise LookupError(f"no node is titled {ref!r} or has that class_type")


@dataclass(frozen=True)
class Target:
    """Where one parameter goes."""

    param: str
    node_id: str
    class_type: str
    input: str


def resolve_bindings(spec: ModelSpec, workflow: Mapping[str, Any], info: ObjectInfo | None = None) -> dict[str, Target]:
    """Every ``[bind]`` entry resolved to a node id; ModelError names the model, parameter and node."""
    targets: dict[str, Target] = {}
    for param, binding in spec.bind.items():
        where = f"model {spec.name!r}: parameter {param!r} -> node {binding.node!r}"
        try:
            node_id = find_node(workflow, binding.node)
        except LookupError as exc:
            raise ModelError(f"{where}: {exc}") from None
        node = workflow[node_id]
        class_type = node["class_type"]
        known = node_inputs(info, class_type) if info is not None else {}
        if info is not None and class_type not in info:
            raise ModelError(f"{where}: class_type {class_type!r} is not on the server")
        if info is None:
            exists = binding.input in node.get("inputs", {})
        else:
            exists = binding.input in known
        if not exists:
            offered = ", ".join(sorted(known or node.get("inputs", {}))) or "none"
            raise ModelError(
                f"{where} ({class_type}, id {node_id}): no input {binding.input!r} (inputs: {offered})"
            )
        targets[param] = Target(param, node_id, class_type, binding.input)
    return targets


def bind(workflow: Mapping[str, Any], targets: Mapping[str, Target], values: Mapping[str, Any]) -> Workflow:
    """A deep copy of ``workflow`` with each value written into its parameter's input."""
    out = copy.deepcopy(dict(workflow))
    for param, value in values.items():
        target = targets.get(param)
        if target is None:
            raise InvalidRequest(f"this model does not take {param}", field=param)
        out[target.node_id].setdefault("inputs", {})[target.input] = value
    return out


def check_params(
    spec: ModelSpec, targets: Mapping[str, Target], params: Mapping[str, Any], info: ObjectInfo
) -> dict[str, Any]:
    """Job settings converted to their input's type and checked against its range or list.

    ``InvalidRequest`` names ``voice_settings.<param>``: the request asked for more than the node takes.
    """
    out: dict[str, Any] = {}
    for param, value in params.items():
        target = targets.get(param)
        if target is None or param in CONTENT_PARAMS or param.startswith("voice_"):
            raise InvalidRequest(f"model {spec.name!r} does not take {param}", field=f"voice_settings.{param}")
        spec_in = node_inputs(info, target.class_type).get(target.input)
        if spec_in is None:
            out[param] = value
            continue
        converted, reason = check_value(spec_in, value)
        if reason is not None:
            raise InvalidRequest(
                f"{reason['message']} for model {spec.name!r} ({target.class_type}.{target.input})",
                field=f"voice_settings.{param}",
            )
        out[param] = converted
    return out


def prune(workflow: Mapping[str, Any], node_ids: Iterable[str], info: ObjectInfo | None = None) -> Workflow:
    """A copy without ``node_ids`` and the links from them.

    Used for a voice slot the job leaves empty on a node pack whose voice inputs are
    optional (the node then speaks in its own voice). A link into a required input
    cannot be dropped: ModelError.
    """
    drop = set(node_ids)
    out = {nid: copy.deepcopy(node) for nid, node in workflow.items() if nid not in drop}
    for nid, node in out.items():
        inputs = node.get("inputs", {})
        for name in [n for n, v in inputs.items() if isinstance(v, list) and len(v) == 2 and str(v[0]) in drop]:
            spec = node_inputs(info, node["class_type"]).get(name) if info is not None else None
            if spec is not None and spec.category == "required":
                raise ModelError(
                    f"node {nid} ({node['class_type']}) needs {name!r}; the node feeding it cannot be left out"
                )
            del inputs[name]
    return out


def validate_workflow(workflow: Mapping[str, Any], info: ObjectInfo, *, offline: bool = True) -> list[str]:
    """Problems ComfyUI would report for this workflow, one line each; empty when it would run.

    ``offline``: ``info`` is a snapshot from another server, so combo lists that mirror
    that server's folders (uploaded files, installed models) are not held against it.
    """
    checked = offline_info(info) if offline else info
    result = validate_prompt(workflow, checked, offline_validators())
    if result.ok:
        return [_describe(nid, e, workflow) for nid, errs in result.node_errors.items() for e in errs["errors"]]
    if not result.node_errors and result.error:
        return [f"{result.error['message']} {result.error.get('details', '')}".strip()]
    return [_describe(nid, e, workflow) for nid, errs in result.node_errors.items() for e in errs["errors"]]


def _describe(node_id: str, error: Mapping[str, Any], workflow: Mapping[str, Any]) -> str:
    node = workflow.get(node_id, {})
    label = title(node) or node.get("class_type", "?")
    return f"node {node_id} ({label}, {node.get('class_type', '?')}): {error['message']}: {error['details']}"


def voice_param(speaker: int) -> str:
    """The parameter that carries speaker ``speaker``'s reference voice: ``voice``, ``voice_2``, ..."""
    return "voice" if speaker == 1 else f"voice_{speaker}"


def check_model(spec: ModelSpec, info: ObjectInfo, *, offline: bool = True) -> list[str]:
    """Everything wrong with a ComfyUI model file and its workflow, one line each."""
    path = spec.workflow_path()
    if path is None:
        return [f"model {spec.name!r}: engine comfyui needs a workflow"]
    try:
        workflow = load_workflow(path)
        targets = resolve_bindings(spec, workflow, info)
    except ModelError as exc:
        return [str(exc)]
    problems = [f"{path.name}: {p}" for p in validate_workflow(workflow, info, offline=offline)]
    if "text" not in targets:
        problems.append(f"model {spec.name!r}: nothing binds 'text'")
    if spec.voice_cloning:
        missing = [voice_param(n) for n in range(1, spec.speakers + 1) if voice_param(n) not in targets]
        if missing:
            problems.append(f"model {spec.name!r}: voice_cloning with {spec.speakers} speakers needs {missing} bound")
    for key, value in spec.defaults.items():
        problems.extend(_check_default(spec, targets, info, key, value))
    return problems


def _check_default(spec: ModelSpec, targets: Mapping[str, Target], info: ObjectInfo, key: str, value: Any) -> list[str]:
    where = f"model {spec.name!r}: default {key}"
    if key == "voice" or key.startswith("voice_"):
        base = spec.source.parent if spec.source is not None else Path(".")
        if key not in targets:
            return [f"{where}: {key} is not bound"]
        if not isinstance(value, str) or not (base / value).is_file():
            return [f"{where}: no voice file {value!r} next to the model file"]
        return []
    if key not in targets:
        return [f"{where}: the parameter is not bound, so the default would be ignored"]
    try:
        check_params(spec, targets, {key: value}, info)
    except InvalidRequest as exc:
        return [f"{where}: {exc}"]
    return []
