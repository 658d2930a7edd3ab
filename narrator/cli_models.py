"""``narrator models list`` and ``narrator models validate [--comfy URL]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .errors import EngineUnavailable, ModelError
from .models import ModelSpec, load_model_file
from .settings import Settings


def register(sub: Any) -> None:
    """Add the ``models`` command group to an argparse subparsers object."""
    models = sub.add_parser("models", help="list and check the model files")
    actions = models.add_subparsers(dest="models_command", metavar="{list,validate}")
    actions.required = True
    listing = actions.add_parser("list", help="the models in the workflows folder")
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


def _load_all(folder: Path) -> tuple[list[ModelSpec], list[str]]:
    specs, problems = [], []
    if not folder.is_dir():
        return [], [f"workflows folder {folder} does not exist"]
    for path in sorted(folder.glob("*.toml")):
        try:
            specs.append(load_model_file(path))
        except ModelError as exc:
            problems.append(str(exc))
    return specs, problems


def list_models(args: argparse.Namespace, settings: Settings) -> int:
    specs, problems = _load_all(settings.workflows_dir)
    rows = [("MODEL", "ENGINE", "RATE", "SPEAKERS", "CLONING", "PARAMETERS")]
    for spec in specs:
        default = " (default)" if spec.name == settings.default_model else ""
        rows.append(
            (
                spec.name + default,
                spec.engine,
                str(spec.sample_rate),
                str(spec.speakers),
                "yes" if spec.voice_cloning else "no",
                ", ".join(sorted(spec.supported_parameters)) or "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0


def validate_models(args: argparse.Namespace, settings: Settings) -> int:
    from .comfy import object_info
    from .comfy.client import ClientConfig, ComfyClient, Deadline
    from .comfy.workflow import check_model

    specs, problems = _load_all(settings.workflows_dir)
    wanted = set(getattr(args, "names", None) or ())
    unknown = wanted - {s.name for s in specs}
    problems += [f"no model named {name!r}" for name in sorted(unknown)]
    specs = [s for s in specs if not wanted or s.name in wanted]
    url = getattr(args, "comfy", None)
    if url:
        client = ComfyClient(url, ClientConfig(request_timeout=min(30.0, settings.comfy_timeout)))
        try:
            info = client.object_info(Deadline(settings.comfy_timeout))
        except EngineUnavailable as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
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
    return [f"model {spec.name!r}: unknown engine {spec.engine!r}"]
