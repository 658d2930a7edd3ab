"""Run every benchmark and print ``name  value unit  [baseline  ratio]`` lines.

``gpu`` (bench/gpu.py: real ComfyUI, real weights) joins the default list only when
this machine has a CUDA device; name it to run it anyway.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time

MODULES = [
    "bench_speak", "bench_join", "bench_chunk", "bench_comfy", "bench_handler", "bench_pipeline", "bench_load",
    "bench_order", "bench_verify", "bench_runpod", "bench_m4b",
    "bench_book",
]
GPU_MODULES = ["gpu"]
HEADER = f"{'figure':<48} {'value':>12} {'unit':<10} {'baseline':>10} {'ratio':>8}"

Row = tuple[str, float | None, str, float | None, float | None]


def default_modules(cuda: bool) -> list[str]:
    """Every benchmark; the GPU ones only with a CUDA device."""
    return MODULES + (GPU_MODULES if cuda else [])


def format_row(row: Row) -> str:
    """One figure; a value of None (not measured this run) prints as n/a."""
    figure, value, unit, baseline, ratio = row
    val = f"{value:>12.4g}" if value is not None else f"{'n/a':>12}"
    base = f"{baseline:>10.3g}" if baseline is not None else " " * 10
    rat = f"{ratio:>7.2f}x" if ratio is not None else ""
    return f"{figure:<48} {val} {unit:<10} {base} {rat}".rstrip()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("only", nargs="*", help="benchmark modules to run (default: all; gpu only with CUDA)")
    args = parser.parse_args()
    modules = args.only
    if not modules:
        from bench.gpu import cuda_present

        cuda = cuda_present()
        modules = default_modules(cuda)
        if not cuda:
            print("# gpu skipped: no CUDA device (torch and nvidia-smi see none)", file=sys.stderr)
    failed = 0
    print(HEADER)
    for name in modules:
        started = time.perf_counter()
        try:
            module = importlib.import_module(f"bench.{name}")
            rows = module.run()
        except Exception as exc:  # noqa: BLE001 - one broken benchmark must not hide the others
            print(f"{name:<48} FAILED: {type(exc).__name__}: {exc}")
            failed += 1
            continue
        for row in rows:
            print(format_row(row))
        print(f"# {name} took {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
