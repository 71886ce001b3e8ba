"""What should ``compiled`` compile? Time the first call and the steady state of ``scratch``'s cell or of a whole
layer under ``torch.compile``, beside eager ``scratch`` and ``nn.LSTM``, at one shape and sequence length.

    python -m benchmarks.compile_unit --unit cell --shape medium --seq-len 100 --threads 2
    python -m benchmarks.compile_unit --unit layer --shape medium --seq-len 25

Each run is a fresh process's first compile: Inductor's on-disk caches are turned off
(``TORCHINDUCTOR_FORCE_DISABLE_CACHES=1``), so the first call's time is what a user's first run pays.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TORCHINDUCTOR_FORCE_DISABLE_CACHES", "1")

import torch  # noqa: E402

from lstm_models import build_lstm  # noqa: E402
from lstm_models.benchmarking.grid import SHAPES  # noqa: E402
from lstm_models.core.scratch import lstm_cell, lstm_layer  # noqa: E402


def layer_function(unit: str, dynamic: bool):
    if unit == "eager":
        return lstm_layer
    if unit == "layer":
        return torch.compile(lstm_layer, dynamic=dynamic)
    cell = torch.compile(lstm_cell, dynamic=dynamic)
    return lambda x, h, c, weights: lstm_layer(x, h, c, weights, cell=cell)


def time_steps(run_layer, seq_len: int, shape, rounds: int) -> tuple[float, float]:
    """(first call, median of the next ``rounds``) of a forward+backward through one layer, in seconds."""
    module = build_lstm("scratch", shape.input_size, shape.hidden_size)
    x = torch.randn(seq_len, shape.batch, shape.input_size, requires_grad=True)
    h = c = torch.zeros(shape.batch, shape.hidden_size)

    def step() -> float:
        started = time.perf_counter()
        output, _, _ = run_layer(x, h, c, module.layer_weights(0))
        output.sum().backward()
        return time.perf_counter() - started

    first = step()
    return first, statistics.median(step() for _ in range(rounds))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compile_unit", description=__doc__.split("\n\n")[0])
    parser.add_argument("--unit", choices=("cell", "layer", "eager"), default="cell")
    parser.add_argument("--shape", choices=list(SHAPES), default="medium")
    parser.add_argument("--seq-len", type=int, default=0, help="time steps (default: the shape's)")
    parser.add_argument("--dynamic", action="store_true", help="torch.compile(dynamic=True)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    shape = SHAPES[args.shape]
    seq_len = args.seq_len or shape.seq_len
    first, steady = time_steps(layer_function(args.unit, args.dynamic), seq_len, shape, args.rounds)
    print(f"{args.unit:5} dynamic={args.dynamic} {shape.name} T={seq_len} threads={torch.get_num_threads()}: "
          f"first call {first:.1f} s, then {steady * 1e3:.1f} ms per forward+backward (median of {args.rounds})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
