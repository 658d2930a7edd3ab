"""``narrator doctor [--comfy URL] [--models a,b] [--synthesize]``: is this GPU box ready?

Exit status: 0 every check passed, 1 a check failed or ComfyUI could not be reached.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ..settings import Settings

if TYPE_CHECKING:
    from ..ops.doctor import Finding

# One meaning per code across the CLI: 1 failed (a check, or the server is unreachable), 2 bad input.
EXIT = {"passed": 0, "failed": 1, "unreachable": 1}


def register(sub: Any) -> None:
    """Add the ``doctor`` command to an argparse subparsers object."""
    doctor = sub.add_parser(
        "doctor",
        help="check that ComfyUI can run the models now: server, GPU, node packs, workflows, weights",
        description="One line per check: 'ok   ...' or 'FAIL ... — fix: ...'. "
        "Exit 0 when all pass, 1 when a check fails or ComfyUI cannot be reached.",
    )
    doctor.add_argument("--comfy", metavar="URL", help="the ComfyUI server (default: NARRATOR_COMFY_URL)")
    doctor.add_argument(
        "--models", metavar="A,B", help="only these models (default: every ComfyUI model in the workflows folder)"
    )
    doctor.add_argument(
        "--synthesize",
        action="store_true",
        help="also synthesize two short sentences per ready model: time to first chunk, speed, VRAM",
    )
    doctor.set_defaults(func=run_doctor)


def run_doctor(args: argparse.Namespace, settings: Settings) -> int:
    from ..ops.doctor import diagnose  # the engine and audio stack, only for this command

    if args.comfy:
        settings = settings.with_(comfy_url=args.comfy)
    names = [n.strip() for n in (args.models or "").split(",") if n.strip()] or None
    verdict = diagnose(settings, _print, names=names, synthesize=args.synthesize)
    return EXIT[verdict.value]


def _print(finding: Finding) -> None:
    line = f"{finding.status:<4} {finding.text}"
    if finding.fix:
        line += f" — fix: {finding.fix}"
    print(line, flush=True)
    for detail in finding.details:
        print(f"       {detail}", flush=True)
