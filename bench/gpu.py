"""GPU figures on a real ComfyUI with real weights: cold start, speed, real-time factor, peak VRAM.

Per ComfyUI model that the server can run (``narrator doctor``'s checks):

- **cold start**: from starting ComfyUI (``--start CMD``, e.g. ``docker/start-gpu.sh comfyui``,
  started afresh for each model) to the first chunk *stored* (a short sentence, through
  the worker's own engine, into a file store). Against a running server (``--comfy URL``)
  it is n/a.
- **seconds of synthesis per 100 words** and the **real-time factor** (synthesis time /
  audio time) on a 103-word passage, the model loaded.
- **peak VRAM**: the highest ``/system_stats`` reading (device ``vram_total - vram_free``,
  the whole GPU) polled every 0.25 s during the run.

Targets: cold start < 30 s with baked weights, < 10 s of synthesis per 100 words,
< 8 GiB peak VRAM for VibeVoice-1.5B. The synthesis is narrator.ops.trial's, the one
``narrator doctor --synthesize`` runs.

``python -m bench`` runs this only when a CUDA device is present (torch, if importable,
else ``nvidia-smi -L``); it then takes ``BENCH_GPU_START`` (a start command; unset: the
running server at ``NARRATOR_COMFY_URL``) and ``BENCH_GPU_MODELS`` (comma-separated) from
the environment. Run: ``python -m bench.gpu --start 'docker/start-gpu.sh comfyui'`` or
``python -m bench.gpu --comfy http://127.0.0.1:8188 --models vibevoice-1.5b``.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.__main__ import HEADER, Row, format_row  # noqa: E402
from narrator.comfy import object_info  # noqa: E402
from narrator.comfy.client import ClientConfig, ComfyClient, Deadline  # noqa: E402
from narrator.comfy.readiness import assess  # noqa: E402
from narrator.comfy.survey import survey_url  # noqa: E402
from narrator.comfy.system import GIB  # noqa: E402
from narrator.errors import EngineUnavailable  # noqa: E402
from narrator.models import ModelSpec, load_folder  # noqa: E402
from narrator.ops.doctor import select  # noqa: E402
from narrator.ops.trial import FIRST_TEXT, TrialResult, run_trial  # noqa: E402
from narrator.settings import Settings  # noqa: E402
from narrator.storage import FileStore  # noqa: E402

COLD_START_TARGET = 30.0
"""Seconds from starting ComfyUI to the first chunk stored, weights baked into the image."""
PER_100_WORDS_TARGET = 10.0
VRAM_TARGETS_GIB = {"vibevoice-1.5b": 8.0}
VRAM_INTERVAL = 0.25
PASSAGE = (
    "The lighthouse keeper climbed the narrow stairs every evening at dusk, counting the steps out of habit "
    "rather than need. There were one hundred and twelve of them, worn smooth in the middle by a century of "
    "boots. At the top he wound the clockwork, trimmed the wick, and polished the great lens until it caught "
    "the last of the sunset. Ships he would never meet passed far out on the dark water, trusting the slow "
    "white beam to keep them off the rocks. He liked to think that each of them, somewhere, carried a sailor "
    "who looked back and silently thanked him."
)


# -- is there a GPU? ---------------------------------------------------------------------


def torch_cuda() -> bool | None:
    """What torch says, or None when torch is not importable here."""
    try:
        import torch
    except ImportError:
        return None
    try:
        return bool(torch.cuda.is_available())
    except RuntimeError:
        return False


def nvidia_smi_gpus(smi: str | None = None) -> bool:
    """Whether ``nvidia-smi -L`` lists a GPU (False when it is missing, fails or hangs)."""
    smi = smi or shutil.which("nvidia-smi")
    if smi is None:
        return False
    try:
        done = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and any(line.startswith("GPU ") for line in done.stdout.splitlines())


def cuda_present() -> bool:
    """A CUDA device on this machine: torch says so, or nvidia-smi lists one (ComfyUI has its own torch)."""
    return torch_cuda() is True or nvidia_smi_gpus()


# -- figures -----------------------------------------------------------------------------


def rows_for(model: str, result: TrialResult, cold_start: float | None) -> list[Row]:
    """The bench lines of one model; ``cold_start`` None (a server already running) prints n/a."""
    per_100 = result.seconds_per_100_words
    out: list[Row] = [
        (
            f"gpu {model} cold start to first chunk stored",
            cold_start,
            "s",
            COLD_START_TARGET,
            cold_start / COLD_START_TARGET if cold_start is not None else None,
        ),
        (f"gpu {model} synthesis per 100 words", per_100, "s", PER_100_WORDS_TARGET, per_100 / PER_100_WORDS_TARGET),
        (f"gpu {model} real-time factor", result.real_time_factor, "x", None, None),
        (f"gpu {model} first chunk (server up)", result.first_chunk_seconds, "s", None, None),
    ]
    peak = result.vram_peak / GIB if result.vram_peak is not None else None
    target = VRAM_TARGETS_GIB.get(model)
    ratio = peak / target if peak is not None and target else None
    out.append((f"gpu {model} peak VRAM (polled)", peak, "GiB", target, ratio))
    return out


# -- running -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    settings: Settings
    start: str = ""
    """A command that starts ComfyUI serving at ``settings.comfy_url``; empty: use the running server."""
    models: tuple[str, ...] = ()
    start_timeout: float = 600.0


@contextmanager
def comfyui(command: str, url: str, timeout: float, log: Path) -> Iterator[float]:
    """Start ComfyUI with ``command``, yield the ``perf_counter()`` it was started at once it answers; stop it."""
    with log.open("w") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(shlex.split(command), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_ready(proc, url, Deadline(timeout), log)
        yield started
    finally:
        _stop(proc)


def _wait_ready(proc: subprocess.Popen[bytes], url: str, deadline: Deadline, log: Path) -> None:
    client = ComfyClient(url, ClientConfig(request_timeout=2.0, connect_timeout=1.0))
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"ComfyUI exited ({proc.returncode}) before it answered: {_tail(log)}")
            try:
                client.system_stats(Deadline(min(2.0, max(deadline.remaining(), 0.1))))
                return
            except EngineUnavailable:
                if deadline.expired:
                    raise RuntimeError(f"ComfyUI did not answer {url} within {deadline.seconds:.0f} s") from None
            time.sleep(0.1)
    finally:
        client.close()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, 30.0), (signal.SIGKILL, 10.0)):
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue


def _tail(log: Path) -> str:
    try:
        return log.read_text(errors="replace")[-1500:]
    except OSError:
        return "(no log)"


def _ready(spec: ModelSpec, settings: Settings) -> str:
    """Why the server cannot run ``spec`` now; empty when it can."""
    found = survey_url(settings.comfy_url, [spec], settings.comfy_timeout)
    return assess(spec, found.view, object_info.packaged()).reason


def _trial(spec: ModelSpec, settings: Settings, folder: Path) -> TrialResult:
    return run_trial(
        spec,
        settings,
        first_text=FIRST_TEXT,
        timed_text=PASSAGE,
        store=FileStore(folder / "store"),
        vram_interval=VRAM_INTERVAL,
    )


def measure(options: Options) -> list[Row]:
    settings = options.settings
    specs, problems = load_folder(settings.workflows_dir)
    selected, unknown = select(specs, list(options.models) or None)
    if problems or unknown:
        raise RuntimeError("; ".join(problems + [f"no model named {n!r}" for n in unknown]))
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="narrator-bench-gpu-") as tmp:
        folder = Path(tmp)
        for spec in [s for s in selected if s.engine == "comfyui"]:
            if options.start:
                with comfyui(options.start, settings.comfy_url, options.start_timeout, folder / "comfyui.log") as t0:
                    if reason := _ready(spec, settings):
                        print(f"# gpu {spec.name} skipped: {reason}", file=sys.stderr)
                        continue
                    result = _trial(spec, settings, folder)
                    rows += rows_for(spec.name, result, result.first_chunk_at - t0)
            else:
                if reason := _ready(spec, settings):
                    print(f"# gpu {spec.name} skipped: {reason}", file=sys.stderr)
                    continue
                _unload(settings)
                rows += rows_for(spec.name, _trial(spec, settings, folder), None)
    return rows


def _unload(settings: Settings) -> None:
    """Ask a running server to unload its models, so one model's VRAM is not counted in the next one's."""
    client = ComfyClient(settings.comfy_url)
    try:
        client.free(unload_models=True, free_memory=True)
    finally:
        client.close()


def run() -> list[Row]:
    """From ``python -m bench``: options from the environment."""
    models = tuple(m.strip() for m in os.environ.get("BENCH_GPU_MODELS", "").split(",") if m.strip())
    return measure(Options(Settings.from_env(), start=os.environ.get("BENCH_GPU_START", ""), models=models))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu", description=__doc__.split("\n\n")[0])
    parser.add_argument("--start", metavar="CMD", default="",
                       help="start ComfyUI with this command for each model (e.g. 'docker/start-gpu.sh comfyui')")
    parser.add_argument("--comfy", metavar="URL",
                        help="the server's URL (default: NARRATOR_COMFY_URL); without --start, a running server")
    parser.add_argument("--models", metavar="A,B", default="", help="only these models (default: every ComfyUI model)")
    parser.add_argument("--start-timeout", type=float, default=600.0, help="seconds ComfyUI may take to answer")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    if args.comfy:
        settings = settings.with_(comfy_url=args.comfy)
    models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    rows = measure(Options(settings, start=args.start, models=models, start_timeout=args.start_timeout))
    print(HEADER)
    for row in rows:
        print(format_row(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
