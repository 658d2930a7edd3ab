"""Can this box's ComfyUI run narrator's models? One finding per check, as they are made.

In order: the server answers (its ComfyUI and PyTorch versions), it runs on a GPU,
the node packs the workflows need are installed, and per ComfyUI model: its
workflow is valid against the server's live ``/object_info`` and its weights are
in place. Optionally a synthesis trial per ready model (:mod:`narrator.ops.trial`).
Every wait is bounded by ``NARRATOR_COMFY_TIMEOUT``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..comfy import object_info
from ..comfy.readiness import FAIL, OK, SKIP, Readiness, assess, pack_checks
from ..comfy.survey import Survey, survey_url
from ..comfy.system import GIB
from ..errors import EngineUnavailable, NarratorError
from ..models import ModelSpec, load_folder
from ..settings import Settings
from .trial import TrialResult, run_trial


class Verdict(enum.Enum):
    PASSED = "passed"
    FAILED = "failed"
    UNREACHABLE = "unreachable"


@dataclass(frozen=True)
class Finding:
    status: str
    """``ok``, ``FAIL`` or ``skip``."""
    text: str
    fix: str = ""
    details: tuple[str, ...] = ()


Report = Callable[[Finding], None]

UNREACHABLE_FIX = (
    "start ComfyUI (docker/start-gpu.sh comfyui), or set NARRATOR_COMFY_URL (or --comfy URL) to where it listens"
)
CPU_FIX = (
    "give ComfyUI the GPU (docker run --gpus all, the compose device reservation, the NVIDIA container toolkit); "
    "check nvidia-smi, and that COMFY_ARGS has no --cpu"
)


def select(specs: Sequence[ModelSpec], names: Sequence[str] | None) -> tuple[list[ModelSpec], list[str]]:
    """The models to check (default: every ComfyUI one) and the names that match none."""
    if not names:
        return [s for s in specs if s.engine == "comfyui"], []
    by_name = {s.name: s for s in specs}
    return [by_name[n] for n in names if n in by_name], [n for n in names if n not in by_name]


def diagnose(settings: Settings, report: Report, *, names: Sequence[str] | None = None,
             synthesize: bool = False) -> Verdict:
    """Check the server at ``settings.comfy_url`` for the models in ``settings.workflows_dir``."""
    specs, problems = load_folder(settings.workflows_dir)
    selected, unknown = select(specs, names)
    comfy = [s for s in selected if s.engine == "comfyui"]
    try:
        found = survey_url(settings.comfy_url, comfy, settings.comfy_timeout)
    except EngineUnavailable as exc:
        report(Finding(FAIL, str(exc), UNREACHABLE_FIX))
        return Verdict.UNREACHABLE
    failed = False

    def say(finding: Finding) -> None:
        nonlocal failed
        failed = failed or finding.status == FAIL
        report(finding)

    stats = found.stats
    say(Finding(OK, f"ComfyUI {stats.comfyui_version} at {found.url} "
                    f"(PyTorch {stats.pytorch_version}, Python {stats.python_version})"))
    say(_gpu(found))
    for problem in problems:
        say(Finding(FAIL, problem, "fix the model file (`narrator models validate` lists every problem)"))
    for name in unknown:
        say(Finding(FAIL, f"no model named {name!r}", "see `narrator models list`"))
    for spec in selected:
        if spec.engine == "embedded":
            say(Finding(OK, f"{spec.name}: embedded engine, runs in-process (nothing to check on ComfyUI)"))
        elif spec.engine == "runpod":
            say(Finding(OK, f"{spec.name}: runs on RunPod endpoint {spec.runpod.endpoint if spec.runpod else '?'} "
                            "(nothing to check on ComfyUI; `narrator runpod health --endpoint ID` checks it)"))
    reference = object_info.packaged()
    for check in pack_checks(comfy, found.view.info, reference):
        say(Finding(check.status, check.summary, check.fix))
    ready: list[ModelSpec] = []
    for spec in comfy:
        readiness = assess(spec, found.view, reference)
        for check in readiness.checks:
            if check.name == "nodes":
                continue  # said per node pack above
            more = check.problems[1:] if check.name == "workflow" else ()  # the summary names the first
            say(Finding(check.status, f"{spec.name}: {check.summary}", check.fix, more))
        if readiness.ok:
            ready.append(spec)
        elif synthesize:
            say(Finding(SKIP, f"{spec.name}: synthesis not tried: {_why(readiness)}"))
    if synthesize:
        for spec in ready:
            say(_synthesize(spec, settings))
    return Verdict.FAILED if failed else Verdict.PASSED


def _why(readiness: Readiness) -> str:
    return readiness.reason or "not ready"


def _gpu(found: Survey) -> Finding:
    gpu = found.stats.gpu
    if gpu is None:
        devices = ", ".join(d.name for d in found.stats.devices) or "none"
        return Finding(FAIL, f"ComfyUI runs without a GPU (devices: {devices})", CPU_FIX)
    total = f"{gpu.vram_total / GIB:.1f} GiB" if gpu.vram_total is not None else "unknown size"
    used = f", {gpu.vram_used / GIB:.1f} GiB in use (a sample)" if gpu.vram_used is not None else ""
    return Finding(OK, f"GPU {gpu.name}: {total}{used}")


def _synthesize(spec: ModelSpec, settings: Settings) -> Finding:
    try:
        result = run_trial(spec, settings)
    except NarratorError as exc:
        return Finding(FAIL, f"{spec.name}: synthesis failed: {exc}",
                       "read ComfyUI's log for the node's error (out of memory: a smaller model or a larger GPU)")
    return Finding(OK, f"{spec.name}: {describe_trial(result)}")


def _gib(value: int | None) -> str:
    return "n/a" if value is None else f"{value / GIB:.1f} GiB"


def describe_trial(result: TrialResult) -> str:
    """``first chunk 3.21 s; 2.10 s per 100 words (real-time factor 0.31: ...); VRAM ...``."""
    return (
        f"first chunk in {result.first_chunk_seconds:.2f} s; "
        f"{result.seconds_per_100_words:.2f} s of synthesis per 100 words "
        f"(real-time factor {result.real_time_factor:.3f}: {result.words} words, "
        f"{result.audio_seconds:.2f} s of audio in {result.synth_seconds:.3f} s); "
        f"VRAM in use {_gib(result.vram_after)} after, {_gib(result.vram_before)} before "
        f"(samples of /system_stats, not a peak)"
    )
