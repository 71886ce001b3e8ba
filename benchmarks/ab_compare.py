"""Interleaved A/B timing of two implementations in one process, for quick iteration on a noisy machine.

    python -m benchmarks.ab_compare --shape medium --rounds 9 [--impls native,scratch_fast] [--threads 2]
    python -m benchmarks.ab_compare --shape toy --rounds 500 --against HEAD~1   # scratch_fast now and then

Each round times a forward and a forward+backward of every implementation in turn, each round starting one
implementation later, so slow phases of a shared machine hit all of them alike. Every timed call comes right
after an untimed call of the same pass and implementation, as a training step follows the step before: a call
that follows another implementation's runs on the caches and branch predictors that one left (on 2026-11-25, a
scratch_fast forward at toy took 277 µs right after nn.LSTM's forward+backward, 195 µs right after its own).
The medians over rounds (the first two dropped as warm-up) and their ratios to the first implementation are
printed, with the median number of minor page faults per call: memory that the allocator handed back to the
kernel and takes again costs one fault per 4 KiB page touched, kernel time that is part of the measured time
(see docs/scratch_fast.md). The benchmark suite (``pytest benchmarks --benchmark-only``) remains
the reference; this is the tool for "did that change help?".
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time

import torch

from benchmarks.cli_options import add_selection_options, apply_selection
from benchmarks.revision import RevisionError, scratch_fast_at
from benchmarks.timing import Passes, build_for, check_parity_before_timing, gc_disabled

WARMUP_ROUNDS = 2


def rotated(items: list, shift: int) -> list:
    """``items`` started at position ``shift`` (mod len): each round starts with the next implementation, so that
    a slow phase of the machine does not always fall on the same one's turn."""
    shift %= len(items)
    return items[shift:] + items[:shift]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ab_compare", description=__doc__.split("\n\n")[0])
    add_selection_options(parser, rounds=9, rounds_help="timed rounds (at least 1, after 2 warm-up rounds); "
                                                        "ratios are to the first implementation")
    parser.add_argument("--against", metavar="REV", help="also time scratch_fast as it was at this git revision "
                                                         "(HEAD~1, a commit hash), labelled scratch_fast@REV")
    args = parser.parse_args(argv)
    impls, shape = apply_selection(parser, args, fewest_impls=1 if args.against else 2)
    builders = {impl: None for impl in impls}
    if args.against:
        try:
            builders[f"scratch_fast@{args.against}"] = scratch_fast_at(args.against)
        except RevisionError as error:
            parser.error(f"--against: {error}")
    impls = list(builders)
    for impl, build in builders.items():
        check_parity_before_timing(impl, shape, "cpu", build=build)
    passes = {impl: Passes(build_for(impl, shape, "cpu", build=build), shape, "cpu")
              for impl, build in builders.items()}
    times = {(impl, name): [] for impl in impls for name in ("forward", "forward_backward")}
    faults = {key: [] for key in times}
    with gc_disabled():
        for round_index in range(WARMUP_ROUNDS + args.rounds):
            for impl in rotated(impls, round_index):
                for name in ("forward", "forward_backward"):
                    getattr(passes[impl], name)()  # untimed: the timed call follows its own kind (module doc)
                    faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                    started = time.perf_counter()
                    getattr(passes[impl], name)()
                    times[impl, name].append(time.perf_counter() - started)
                    faults[impl, name].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before)
    print(f"shape {shape.name} {shape.sizes()}, {torch.get_num_threads()} threads, {args.rounds} rounds")
    for name in ("forward", "forward_backward"):
        reference = statistics.median(times[impls[0], name][WARMUP_ROUNDS:])
        for impl in impls:
            median = statistics.median(times[impl, name][WARMUP_ROUNDS:])
            page_faults = statistics.median(faults[impl, name][WARMUP_ROUNDS:])
            print(f"{name:17} {impl:<13} {median * 1e3:9.2f} ms  {median / reference:5.2f}x {impls[0]}  "
                  f"{page_faults:8.0f} page faults")
    return 0


if __name__ == "__main__":
    sys.exit(main())
