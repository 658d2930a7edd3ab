"""Run every benchmark and print ``name  value unit  [baseline  ratio]`` lines."""

from __future__ import annotations

import argparse
import importlib
import sys
import time

MODULES = ["bench_speak", "bench_join", "bench_chunk", "bench_comfy", "bench_handler", "bench_pipeline", "bench_load"]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("only", nargs="*", help="benchmark modules to run (default: all)")
    args = parser.parse_args()
    failed = 0
    print(f"{'figure':<48} {'value':>12} {'unit':<10} {'baseline':>10} {'ratio':>8}")
    for name in args.only or MODULES:
        started = time.perf_counter()
        try:
            module = importlib.import_module(f"bench.{name}")
            rows = module.run()
        except Exception as exc:  # noqa: BLE001 - one broken benchmark must not hide the others
            print(f"{name:<48} FAILED: {type(exc).__name__}: {exc}")
            failed += 1
            continue
        for figure, value, unit, baseline, ratio in rows:
            base = f"{baseline:>10.3g}" if baseline is not None else " " * 10
            rat = f"{ratio:>7.2f}x" if ratio is not None else ""
            print(f"{figure:<48} {value:>12.4g} {unit:<10} {base} {rat}")
        print(f"# {name} took {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
