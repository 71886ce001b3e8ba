"""Interleaved A/B timing of two implementations in one process, for quick iteration on a noisy machine.

    python -m benchmarks.ab_compare --shape medium --rounds 9 [--impls native,scratch_fast] [--threads 2]
    python -m benchmarks.ab_compare --shape toy --rounds 500 --against HEAD~1   # scratch_fast now and then

Each round times a forward and a forward+backward of every implementation in turn (``benchmarks.round_robin``:
each round starts one call later, and each timed call follows an untimed call of itself). The medians over rounds
(the first two dropped as warm-up) and their ratios to the first implementation are printed, with the median
number of minor page faults per call: memory that the allocator handed back to the kernel and takes again costs
one fault per 4 KiB page touched, kernel time that is part of the measured time (see docs/scratch_fast.md). The
benchmark suite (``pytest benchmarks --benchmark-only``) remains the reference; this is the tool for "did that
change help?".
"""

from __future__ import annotations

import argparse
import sys

import torch

from lstm_models.core import huge_pages

from benchmarks.cli_options import add_selection_options, apply_selection
from benchmarks.revision import RevisionError, scratch_fast_at
from benchmarks.round_robin import round_robin_medians
from benchmarks.timing import checked_passes

PASSES = ("forward", "forward_backward")


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
    passes = {impl: checked_passes(impl, shape, "cpu", build=build) for impl, build in builders.items()}
    calls = {(impl, name): getattr(passes[impl], name) for impl in impls for name in PASSES}
    medians = round_robin_medians(calls, args.rounds)
    print(f"shape {shape.name} {shape.sizes()}, {torch.get_num_threads()} threads, {args.rounds} rounds")
    print("huge pages: " + ", ".join(f"{who} {value}" for who, value in huge_pages.settings().items()))
    for name in PASSES:
        reference = medians[impls[0], name].seconds
        for impl in impls:
            median = medians[impl, name]
            print(f"{name:17} {impl:<13} {median.seconds * 1e3:9.2f} ms  {median.seconds / reference:5.2f}x "
                  f"{impls[0]}  {median.page_faults:8.0f} page faults")
    return 0


if __name__ == "__main__":
    sys.exit(main())
