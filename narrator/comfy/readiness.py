"""Can a ComfyUI server run a model now? Judged from the server's own answers.

Pure: ``/object_info`` and the ``GET /models/{folder}`` listings come in as data
(:mod:`narrator.comfy.survey` fetches them). Three checks per ComfyUI model:

- **nodes**: every class_type of its workflow is on the server. A missing custom
  node names the pack to install (the model file's ``node_pack``); a missing
  built-in node means ComfyUI itself is too old.
- **workflow**: the workflow validates against the *live* ``/object_info``, combo
  lists as that server has them, so ``model_name`` must list the model.
- **weights**: every ``[weights]`` file is in the server's listing of its model
  folder, and at least one ``.safetensors`` lies beside them (the shards the
  index names cannot be read through the API; one shard shows they were fetched).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ..errors import ModelError
from ..models import ModelSpec
from .object_info import ObjectInfo
from .workflow import check_model, load_workflow

OK, FAIL, SKIP = "ok", "FAIL", "skip"
BUILT_IN = ""
"""The pack key of nodes that ship with ComfyUI."""
SNAPSHOT_VERSION = "0.3.64"
"""The ComfyUI release narrator's shipped ``object_info.json`` was recorded from."""


@dataclass(frozen=True)
class ServerView:
    """What a server showed: its ``/object_info`` and ``/models/{folder}`` answers (None: 404)."""

    info: ObjectInfo
    listings: Mapping[str, Sequence[str] | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    """``ok``, ``FAIL``, or ``skip`` (not checked because an earlier check failed)."""
    summary: str
    fix: str = ""
    problems: tuple[str, ...] = ()
    """Every problem found, one line each (the summary names the first)."""

    @property
    def ok(self) -> bool:
        return self.status == OK


@dataclass(frozen=True)
class Readiness:
    model: str
    checks: tuple[Check, ...] = ()
    in_process: bool = False
    """An embedded model: it runs in the worker's own process, no server involved."""
    remote: str = ""
    """A ``runpod`` model: the endpoint its chunks go to, not this server."""

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def reason(self) -> str:
        """Why the server cannot run the model now; empty when it can."""
        return next((c.summary for c in self.checks if c.status == FAIL), "")

    @property
    def label(self) -> str:
        if self.in_process:
            return "yes (in-process)"
        if self.remote:
            return f"not here (RunPod endpoint {self.remote})"
        return "yes" if self.ok else f"no: {self.reason}"

    def check(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)


def short_pack(pack: str) -> str:
    """``owner/repo@d04665d073dd…`` as ``owner/repo@d04665d``."""
    repo, at, commit = pack.partition("@")
    return f"{repo}@{commit[:7]}" if at and len(commit) > 7 else pack


def is_built_in(class_type: str, info: ObjectInfo, reference: ObjectInfo | None = None) -> bool:
    """Whether a node ships with ComfyUI (its ``python_module`` is not under ``custom_nodes``).

    A node the server lacks is looked up in ``reference`` (the shipped snapshot).
    """
    for source in (info, reference or {}):
        node = source.get(class_type)
        if isinstance(node, Mapping) and node.get("python_module"):
            return not str(node["python_module"]).startswith("custom_nodes")
    return False


def workflow_nodes(spec: ModelSpec) -> tuple[str, ...]:
    """The class_types a ComfyUI model's workflow uses, sorted. ModelError when it cannot be read."""
    path = spec.workflow_path()
    if path is None:
        raise ModelError(f"model {spec.name!r}: engine comfyui needs a workflow")
    return tuple(sorted({node["class_type"] for node in load_workflow(path).values()}))


def _nodes(names: Sequence[str]) -> str:
    return f"node {names[0]}" if len(names) == 1 else f"nodes {', '.join(names)}"


def _install(pack: str) -> str:
    return f"install {short_pack(pack)}" if pack else "install the node pack that provides it"


def _install_fix(pack: str) -> str:
    if not pack:
        return "install the node pack the workflow was made with and restart ComfyUI"
    repo, _, commit = pack.partition("@")
    at = f" at {commit}" if commit else ""
    return f"install the node pack {repo}{at} (docker/Dockerfile.gpu pins it) and restart ComfyUI"


UPDATE_FIX = f"update ComfyUI (narrator's node snapshot comes from {SNAPSHOT_VERSION})"


def check_nodes(
    spec: ModelSpec, class_types: Sequence[str], info: ObjectInfo, reference: ObjectInfo | None = None
) -> Check:
    missing = [c for c in class_types if c not in info]
    if not missing:
        return Check("nodes", OK, f"{_nodes(list(class_types))} present")
    custom = [c for c in missing if not is_built_in(c, info, reference)]
    built_in = [c for c in missing if c not in custom]
    parts, fixes = [], []
    if custom:
        parts.append(f"{_nodes(custom)} missing ({_install(spec.node_pack)})")
        fixes.append(_install_fix(spec.node_pack))
    if built_in:
        parts.append(f"{_nodes(built_in)} missing (built into ComfyUI: update it)")
        fixes.append(UPDATE_FIX)
    return Check("nodes", FAIL, "; ".join(parts), "; ".join(fixes), tuple(parts))


def check_workflow(spec: ModelSpec, info: ObjectInfo) -> Check:
    problems = check_model(spec, info, offline=False)
    if not problems:
        return Check("workflow", OK, "workflow valid against the server's /object_info")
    more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
    pack = f"install {spec.node_pack} as pinned" if spec.node_pack else "install the node pack the workflow needs"
    fix = f"{pack}, or fix workflows/{spec.workflow} for the installed one (`narrator models validate --comfy URL`)"
    return Check("workflow", FAIL, f"workflow invalid: {problems[0]}{more}", fix, tuple(problems))


def model_folder(files: Iterable[str]) -> str:
    """The folder the weight files share (``VibeVoice/VibeVoice-1.5B``); empty at the top."""
    parents = [posixpath.dirname(f) for f in files]
    return posixpath.commonpath(parents) if parents and all(parents) else ""


def check_weights(spec: ModelSpec, listings: Mapping[str, Sequence[str] | None]) -> Check:
    weights = spec.weights
    if weights is None:
        return Check("weights", OK, "no [weights] in the model file: not checked")
    folder = weights.folder
    listing = listings.get(folder)
    if listing is None:
        return Check(
            "weights",
            FAIL,
            f"weights missing: ComfyUI has no '{folder}' model folder ({_install(spec.node_pack)}: it registers it)",
            _install_fix(spec.node_pack),
        )
    present = set(listing)
    base = model_folder(weights.files)
    prefix = f"{base}/" if base else ""
    shards = [f for f in listing if f.startswith(prefix) and f.endswith(".safetensors")]
    missing = [f for f in weights.files if f not in present]
    if not shards:
        missing.append(f"no .safetensors under {base or folder}")
    where = f"models/{folder}/{base}".rstrip("/")
    if not missing:
        found = f"{len(weights.files)} files, {len(shards)} .safetensors"
        return Check("weights", OK, f"weights present in {where} ({found})")
    name = posixpath.basename(base) or spec.name
    fix = (
        f"bake weights: docker build -f docker/Dockerfile.gpu --build-arg VIBEVOICE_MODELS={name} ., "
        f"or mount them at /comfyui/{where}"
    )
    return Check("weights", FAIL, f"weights missing: {', '.join(missing)}", fix, tuple(missing))


def assess(spec: ModelSpec, server: ServerView, reference: ObjectInfo | None = None) -> Readiness:
    """Whether ``server`` can run ``spec`` now, check by check."""
    if spec.engine == "embedded":
        return Readiness(spec.name, in_process=True)
    if spec.engine == "runpod" and spec.runpod is not None:
        return Readiness(spec.name, remote=spec.runpod.endpoint)
    if spec.engine != "comfyui":
        return Readiness(spec.name, (Check("engine", FAIL, f"unknown engine {spec.engine!r}"),))
    try:
        class_types = workflow_nodes(spec)
    except ModelError as exc:
        unread = Check("workflow", FAIL, str(exc), f"fix the model file {spec.name}.toml and its workflow")
        return Readiness(spec.name, (unread, check_weights(spec, server.listings)))
    nodes = check_nodes(spec, class_types, server.info, reference)
    if nodes.ok:
        workflow = check_workflow(spec, server.info)
    else:
        workflow = Check("workflow", SKIP, "workflow not checked: nodes missing")
    return Readiness(spec.name, (nodes, workflow, check_weights(spec, server.listings)))


def pack_checks(specs: Iterable[ModelSpec], info: ObjectInfo, reference: ObjectInfo | None = None) -> list[Check]:
    """One check per node pack the ComfyUI models need (and one for ComfyUI's built-in nodes)."""
    needed: dict[str, set[str]] = {}
    for spec in specs:
        if spec.engine != "comfyui":
            continue
        try:
            class_types = workflow_nodes(spec)
        except ModelError:
            continue  # assess() reports the unreadable workflow against its model
        for class_type in class_types:
            pack = BUILT_IN if is_built_in(class_type, info, reference) else spec.node_pack
            needed.setdefault(pack, set()).add(class_type)
    checks = []
    for pack in sorted(needed, key=lambda p: (p == BUILT_IN, p)):
        names = sorted(needed[pack])
        label = "ComfyUI built-in nodes" if pack == BUILT_IN else f"node pack {short_pack(pack) or '(unnamed)'}"
        missing = [n for n in names if n not in info]
        if not missing:
            checks.append(Check(label, OK, f"{label}: {', '.join(names)} present"))
            continue
        fix = UPDATE_FIX if pack == BUILT_IN else _install_fix(pack)
        checks.append(Check(label, FAIL, f"{label}: {_nodes(missing)} missing", fix, tuple(missing)))
    return checks
