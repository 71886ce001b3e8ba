"""The command-line options that the benchmark helper commands (A/B timing, step profile) share."""

from __future__ import annotations

import argparse

import torch

from lstm_models import IMPLEMENTATIONS, UnknownNamesError, select_names

from benchmarks.grid import SHAPES, Shape, fits


def add_selection_options(parser: argparse.ArgumentParser, rounds: int, rounds_help: str) -> None:
    parser.add_argument("--impls", default="native,scratch_fast",
                        help=f"comma-separated, from {', '.join(IMPLEMENTATIONS)}, or all")
    parser.add_argument("--shape", choices=list(SHAPES), default="medium")
    parser.add_argument("--rounds", type=int, default=rounds, help=rounds_help)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")


def apply_selection(parser: argparse.ArgumentParser, args: argparse.Namespace,
                    fewest_impls: int) -> tuple[list[str], Shape]:
    """Check the options (``parser.error`` names a bad one: exit status 2), set the thread count, and return the
    implementations and the shape."""
    try:
        impls = list(select_names(args.impls))
    except UnknownNamesError as error:
        parser.error(f"--impls: {error}")
    if len(impls) < fewest_impls:
        parser.error(f"--impls: give {fewest_impls} or more of {', '.join(IMPLEMENTATIONS)} (got {args.impls!r})")
    shape = SHAPES[args.shape]
    misfits = [impl for impl in impls if not fits(impl, shape)]
    if misfits:
        parser.error(f"--impls: {', '.join(misfits)} cannot run the {shape.name} shape (statquest takes toy only)")
    if args.rounds < 1:
        parser.error(f"--rounds: must be at least 1 (got {args.rounds})")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    return impls, shape
