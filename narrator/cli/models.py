"""``narrator models list [--comfy [URL]]`` and ``narrator models validate [--comfy URL]``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..models import ModelSpec, load_folder
from ..settings import Settings


def register(sub: Any) -> None:
    """Add the ``models`` command group to an argparse subparsers object."""
    models = sub.add_parser("models", help="list and check the model files")
    actions = models.add_subparsers(dest="models_command", metavar="{list,validate}")
    actions.required = True
    listing = actions.add_parser("list", help="the models in the workflows folder")
    listing.add_argument(
        "--comfy",
        metavar="URL",
        nargs="?",
        const="",
        help="add a READY column: can this ComfyUI server run each model now? "
        "(--comfy alone: NARRATOR_COMFY_URL; without --comfy no server is asked)",
    )
    listing.set_defaults(func=list_models)
    check = actions.add_parser(
        "validate", help="check every model file against its workflow and the ComfyUI node definitions"
    )
    check.add_argument(
        "--comfy",
        metavar="URL",
        help="check against this live server's /object_info instead of the snapshot narrator ships",
    )
    check.add_argument("names", nargs="*", metavar="MODEL", help="only these models (default: all)")
    check.set_defaults(func=validate_models)


def list_models(args: argparse.Namespace, settings: Settings) -> int:
    specs, problems = load_folder(settings.workflows_dir)
    comfy = getattr(args, "comfy", None)
    ready: dict[str, str] | None = None
    if comfy is not None:
        url = comfy or settings.comfy_url
        ready = _readiness(url, specs, settings.comfy_timeout)  # unreachable: main() says so, exit 1
    rows: list[tuple[str, ...]] = [("MODEL", "ENGINE", "RATE", "SPEAKERS", "CLONING", "PARAMETERS")]
    if ready is not None:
        rows[0] += (f"READY ON {url}",)
    for spec in specs:
        default = " (default)" if spec.name == settings.default_model else ""
        row: tuple[str, ...] = (
            spec.name + default,
            spec.engine,
            str(spec.sample_rate),
            str(spec.speakers),
            "yes" if spec.voice_cloning else "no",
            ", ".join(sorted(spec.supported_parameters)) or "-",
        )
        if ready is not None:
            row += (ready[spec.name],)
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0


def _readiness(url: str, specs: list[ModelSpec], timeout: float) -> dict[str, str]:
    """Model name -> ``yes`` / ``yes (in-process)`` / ``no: why``, from the server at ``url``."""
    from ..comfy import object_info
    from ..comfy.readiness import assess
    from ..comfy.survey import survey_url

    found = survey_url(url, [s for s in specs if s.engine == "comfyui"], timeout)
    reference = object_info.packaged()
    return {spec.name: assess(spec, found.view, reference).label for spec in specs}


def validate_models(args: argparse.Namespace, settings: Settings) -> int:
    from ..comfy import object_info
    from ..comfy.client import ClientConfig, ComfyClient, Deadline
    from ..comfy.workflow import check_model

    specs, problems = load_folder(settings.workflows_dir)
    wanted = set(getattr(args, "names", None) or ())
    unknown = wanted - {s.name for s in specs}
    problems += [f"no model named {name!r}" for name in sorted(unknown)]
    specs = [s for s in specs if not wanted or s.name in wanted]
    url = getattr(args, "comfy", None)
    if url:
        client = ComfyClient(url, ClientConfig(request_timeout=min(30.0, settings.comfy_timeout)))
        try:
            info = client.object_info(Deadline(settings.comfy_timeout))  # unreachable: main() says so, exit 1
        finally:
            client.close()
        source = f"{url} /object_info"
    else:
        info = object_info.packaged()
        source = "the shipped object_info.json snapshot"
    failed = 0
    for spec in specs:
        found = check_model(spec, info, offline=not url) if spec.engine == "comfyui" else _check_other(spec)
        if found:
            failed += 1
            print(f"FAIL {spec.name}")
            for problem in found:
                print(f"  - {problem}")
        else:
            print(f"ok   {spec.name} ({spec.engine})")
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    print(f"{len(specs) - failed} of {len(specs)} models valid against {source}")
    return 1 if failed or problems else 0


def _check_other(spec: ModelSpec) -> list[str]:
    if spec.engine == "embedded":
        return [] if spec.workflow is None else [f"model {spec.name!r}: the embedded engine takes no workflow"]
    if spec.engine == "runpod":
        if spec.runpod is None:
            return [f"model {spec.name!r}: the runpod engine needs a [runpod] table (endpoint, model)"]
        return [] if spec.workflow is None else [f"model {spec.name!r}: the runpod engine takes no workflow"]
    return [f"model {spec.name!r}: unknown engine {spec.engine!r}"]
