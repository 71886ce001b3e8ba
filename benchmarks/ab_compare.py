"""Interleaved A/B timing of two implementations in one process, for quick iteration on a noisy machine.

    python -m benchmarks.ab_compare --shape medium --rounds 9 [--impls native,scratch_fast] [--threads 2]

Each round times a forward and a forward+backward of every implementation in turn, so slow phases of a shared
machine hit all of them alike; the medians over rounds (the first two dropped as warm-up) and their ratios to the
first implementation are printed. The benchmark suite (``pytest benchmarks --benchmark-only``) remains the
reference; this is the tool for "did that change help?".
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from lstm_models import IMPLEMENTATIONS

from benchmarks.grid import SHAPES
from benchmarks.timing import Passes, build_for, check_parity_before_timing, gc_disabled

WARMUP_ROUNDS = 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ab_compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("--impls", default="native,scratch_fast", help="comma-separated; ratios are to the first")
    parser.add_argument("--shape", choices=list(SHAPES), default="medium")
    parser.add_argument("--rounds", type=int, default=9, help="timed rounds (at least 1, after 2 warm-up rounds)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)
    impls = [name.strip() for name in args.impls.split(",") if name.strip()]
    unknown = [name for name in impls if name not in IMPLEMENTATIONS]
    if unknown or len(impls) < 2:
        parser.error(f"--impls: give two or more of {', '.join(IMPLEMENTATIONS)} (got {args.impls!r})")
    if args.rounds < 1:
        parser.error(f"--rounds: must be at least 1 (got {args.rounds})")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    shape = SHAPES[args.shape]
    for impl in impls:
        check_parity_before_timing(impl, shape, "cpu")
    passes = {impl: Passes(build_for(impl, shape, "cpu"), shape, "cpu") for impl in impls}
    times = {(impl, name): [] for impl in impls for name in ("forward", "forward_backward")}
    with gc_disabled():
        for _ in range(WARMUP_ROUNDS + args.rounds):
            for impl in impls:
                for name in ("forward", "forward_backward"):
                    started = time.perf_counter()
                    getattr(passes[impl], name)()
                    times[impl, name].append(time.perf_counter() - started)
    print(f"shape {shape.name} {shape.sizes()}, {torch.get_num_threads()} threads, {args.rounds} rounds")
    for name in ("forward", "forward_backward"):
        reference = statistics.median(times[impls[0], name][WARMUP_ROUNDS:])
        for impl in impls:
            median = statistics.median(times[impl, name][WARMUP_ROUNDS:])
            print(f"{name:17} {impl:13} {median * 1e3:9.2f} ms  {median / reference:5.2f}x {impls[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
