"""The command-line options that the benchmark helper commands (A/B timing, step profile, ceiling) share."""

from __future__ import annotations

import argparse

import torch

from lstm_models import IMPLEMENTATIONS, SpecError, label_of, select_specs

from lstm_models.benchmarking.grid import SHAPES, Shape, fits

from benchmarks.timing import NotTimed, Passes, checked_passes


def add_timing_options(parser: argparse.ArgumentParser, rounds: int, rounds_help: str) -> None:
    """--shape, --rounds and --threads: what every helper command times, how often, on how many threads."""
    parser.add_argument("--shape", choices=list(SHAPES), default="medium")
    parser.add_argument("--rounds", type=int, default=rounds, help=rounds_help)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")


def add_selection_options(parser: argparse.ArgumentParser, rounds: int, rounds_help: str) -> None:
    """--impls and the timing options."""
    parser.add_argument("--impls", default="native,scratch_fast",
                        help=f"comma-separated implementation specs: registered names ({', '.join(IMPLEMENTATIONS)}), "
                             "package.module:Attribute, either as label=SPEC; or all")
    add_timing_options(parser, rounds, rounds_help)


def apply_timing_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Shape:
    """Check --rounds (``parser.error`` names it: exit status 2), set the thread count, and return the shape."""
    if args.rounds < 1:
        parser.error(f"--rounds: must be at least 1 (got {args.rounds})")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    return SHAPES[args.shape]


def apply_selection(parser: argparse.ArgumentParser, args: argparse.Namespace,
                    fewest_impls: int) -> tuple[list[str], Shape]:
    """Check the options (``parser.error`` names a bad one: exit status 2), set the thread count, and return the
    implementations and the shape."""
    try:
        impls = list(select_specs(args.impls))
    except SpecError as error:
        parser.error(f"--impls: spec {error}")
    if len(impls) < fewest_impls:
        parser.error(f"--impls: give {fewest_impls} or more of {', '.join(IMPLEMENTATIONS)} (got {args.impls!r})")
    shape = SHAPES[args.shape]
    misfits = [impl for impl in impls if not fits(impl, shape)]
    if misfits:
        parser.error(f"--impls: {', '.join(map(label_of, misfits))} cannot run the {shape.name} shape (statquest takes "
                     "toy only)")
    return impls, apply_timing_options(parser, args)


def checked_or_refused(parser: argparse.ArgumentParser, impl: str, shape: Shape, device: str) -> Passes:
    """``timing.checked_passes``, or ``parser.error`` naming why the implementation is not timed (exit status 2)."""
    try:
        return checked_passes(impl, shape, device)
    except NotTimed as reason:
        parser.error(f"--impls: {reason}")
