"""Where a training step's time goes: matrix products against everything else, per implementation.

    python -m benchmarks.profile_step --shape medium --rounds 3 [--impls native,scratch_fast] [--threads 2]

Runs ``--rounds`` forward+backward steps of each implementation under ``torch.profiler`` (CPU) and prints, per
step, the operators' own time split into matrix products (``mm``, ``bmm``, ``addmm``, ``baddbmm``, ``matmul``) and
the rest, and the operators that took longest. The profiler adds a few microseconds to every operator call, so
the totals are above the benchmark suite's; what this answers is *what* the time is spent on. ``nn.LSTM`` on a
CPU runs as oneDNN's fused RNN primitive (``aten::mkldnn_rnn_layer``), whose products and gate arithmetic happen
inside one operator: its products cannot be split out, and the table says so.
"""

from __future__ import annotations

import argparse
import sys

import torch
from torch.profiler import ProfilerActivity, profile

from lstm_models import label_of

from benchmarks.cli_options import add_selection_options, apply_selection, checked_or_refused
from benchmarks.timing import Passes

MATRIX_PRODUCTS = frozenset({"aten::mm", "aten::bmm", "aten::addmm", "aten::addmm_", "aten::baddbmm",
                             "aten::addbmm", "aten::matmul",
                             # scratch_fast's compiled loops name each step's product (csrc/fused_steps.cpp)
                             "lstm_bench_fused::step_product"})
# Operators that run a whole fused RNN: their time includes products and element-wise work alike.
FUSED_RNN = frozenset({"aten::mkldnn_rnn_layer", "aten::mkldnn_rnn_layer_backward", "aten::_cudnn_rnn",
                       "aten::_cudnn_rnn_backward"})
WARMUP_STEPS = 2


def profile_steps(passes: Passes, rounds: int) -> list:
    """The profiler's per-operator averages over ``rounds`` forward+backward steps."""
    for _ in range(WARMUP_STEPS):
        passes.forward_backward()
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for _ in range(rounds):
            passes.forward_backward()
    return list(profiler.key_averages())


def split_time(rows: list, rounds: int) -> dict[str, float]:
    """Milliseconds per step of operators' own time: all of it, matrix products, fused RNN operators, the rest."""
    def per_step_ms(selected) -> float:
        return sum(row.self_cpu_time_total for row in selected) / rounds / 1e3

    total = per_step_ms(rows)
    products = per_step_ms(row for row in rows if row.key in MATRIX_PRODUCTS)
    fused = per_step_ms(row for row in rows if row.key in FUSED_RNN)
    return {"total": total, "products": products, "fused_rnn": fused, "other": total - products - fused}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_step", description=__doc__.split("\n\n")[0])
    add_selection_options(parser, rounds=3, rounds_help="profiled steps (at least 1, after 2 warm-up steps)")
    parser.add_argument("--top", type=int, default=6, help="operators listed per implementation (default: 6)")
    args = parser.parse_args(argv)
    impls, shape = apply_selection(parser, args, fewest_impls=1)
    print(f"shape {shape.name} {shape.sizes()}, {torch.get_num_threads()} threads, {args.rounds} profiled steps; "
          "milliseconds per forward+backward step, operators' own time under the profiler")
    for impl in impls:
        rows = profile_steps(checked_or_refused(parser, impl, shape, "cpu"), args.rounds)
        split = split_time(rows, args.rounds)
        print(f"\n{label_of(impl)}: total {split['total']:.1f} ms = matrix products {split['products']:.1f}"
              f" + fused RNN operators {split['fused_rnn']:.1f} (products and gates together)"
              f" + other operators {split['other']:.1f}")
        for row in sorted(rows, key=lambda row: row.self_cpu_time_total, reverse=True)[:args.top]:
            ms_per_step, calls_per_step = row.self_cpu_time_total / args.rounds / 1e3, row.count // args.rounds
            print(f"  {row.key:40} {ms_per_step:9.2f} ms  {calls_per_step:6} calls")
    return 0


if __name__ == "__main__":
    sys.exit(main())
