"""Interleaved A/B timing of two implementations in one process, for quick iteration on a noisy machine.

    python -m benchmarks.ab_compare --shape medium --rounds 9 [--impls native,scratch_fast] [--threads 2]
    python -m benchmarks.ab_compare --shape toy --rounds 500 --against HEAD~1   # scratch_fast now and then

With ``--against REV``, the revision's native and scratch_fast are timed the same way in a process of their own
(``benchmarks.revision``), and its scratch_fast is shown as ``scratch_fast@REV`` with its ratio to that process's
native.

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
import json
import sys

import torch

from lstm_models import label_of
from lstm_models.core.scratch_fast import huge_pages

from benchmarks.cli_options import add_selection_options, apply_selection, checked_or_refused
from benchmarks.revision import RevisionError, medians_at
from benchmarks.round_robin import round_robin_medians

PASSES = ("forward", "forward_backward")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ab_compare", description=__doc__.split("\n\n")[0])
    add_selection_options(parser, rounds=9, rounds_help="timed rounds (at least 1, after 2 warm-up rounds); "
                                                        "ratios are to the first implementation")
    parser.add_argument("--against", metavar="REV", help="also time scratch_fast as it was at this git revision "
                                                         "(HEAD~1, a commit hash) in a process of its own, labelled "
                                                         "scratch_fast@REV, its ratio to that process's native")
    parser.add_argument("--json", metavar="FILE", help="also write the medians, {pass: {impl: seconds}}, to FILE")
    args = parser.parse_args(argv)
    impls, shape = apply_selection(parser, args, fewest_impls=2)
    earlier = {}
    if args.against:
        try:
            earlier = medians_at(args.against, ["--shape", args.shape, "--rounds", str(args.rounds),
                                                "--threads", str(args.threads)])
        except RevisionError as error:
            parser.error(f"--against: {error}")
    passes = {impl: checked_or_refused(parser, impl, shape, "cpu") for impl in impls}
    calls = {(impl, name): getattr(passes[impl], name) for impl in impls for name in PASSES}
    medians = round_robin_medians(calls, args.rounds)
    print(f"shape {shape.name} {shape.sizes()}, {torch.get_num_threads()} threads, {args.rounds} rounds")
    print("huge pages: " + ", ".join(f"{who} {value}" for who, value in huge_pages.settings().items()))
    for name in PASSES:
        reference = medians[impls[0], name].seconds
        for impl in impls:
            median = medians[impl, name]
            print(f"{name:17} {label_of(impl):<13} {median.seconds * 1e3:9.2f} ms  {median.seconds / reference:5.2f}x "
                  f"{label_of(impls[0])}  {median.page_faults:8.0f} page faults")
        if earlier:
            then = earlier[name]
            print(f"{name:17} {'scratch_fast@' + args.against:<13} {then['scratch_fast'] * 1e3:9.2f} ms  "
                  f"{then['scratch_fast'] / then['native']:5.2f}x native (timed in its own process)")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({name: {label_of(impl): medians[impl, name].seconds for impl in impls} for name in PASSES}, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
