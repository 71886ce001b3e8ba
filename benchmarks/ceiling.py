"""The machine's matrix-multiply ceiling, and what the products of one LSTM layer reach against it.

    python -m benchmarks.ceiling --shape medium --rounds 9 [--threads 2]

Times float32 ``torch`` products on the CPU, taking turns round by round (``benchmarks.round_robin``), and prints
the median time of each and its GFLOP/s (multiply and add counted as 2):

- square ``torch.mm`` at n = 512, 1024, 2048: the ceiling that the design note compares against;
- the products that ``scratch_fast`` runs for one layer at ``--shape``, in the layouts it uses: the input
  projection before the loop, one recurrent step of the forward (with the per-gate weights contiguous, as
  ``scratch_fast`` lays them out, and as a transposed view of nn.LSTM's weight, which it used before), one step of
  the backward, and the three products after the backward's loop.

A per-step product is timed as ``seq_len`` calls in a row, as in the loop, and reported per call. The figures
say how close a product can come to the ceiling here; docs/scratch_fast.md uses them.
"""

from __future__ import annotations

import argparse
import sys
from typing import Callable, NamedTuple

import torch

from benchmarks.cli_options import add_timing_options, apply_timing_options
from lstm_models.benchmarking.grid import Shape
from benchmarks.round_robin import round_robin_medians

SQUARE_SIZES = (512, 1024, 2048)


class Product(NamedTuple):
    name: str
    run: Callable[[], object]  # one timed call (a per-step product: ``calls`` of them)
    flops: int  # per call
    calls: int = 1


def square_products() -> list[Product]:
    products = []
    for n in SQUARE_SIZES:
        a, b = torch.randn(n, n), torch.randn(n, n)
        products.append(Product(f"square {n} x {n} @ {n} x {n}", lambda a=a, b=b: torch.mm(a, b), 2 * n ** 3))
    return products


def layer_products(shape: Shape) -> list[Product]:
    """The products of one ``scratch_fast`` layer at ``shape`` (its first layer: input size I), with random data."""
    steps, batch, inputs, hidden = shape.seq_len, shape.batch, shape.input_size, shape.hidden_size
    rows, gates = steps * batch, 4 * hidden
    x, weight_ih, weight_hh = torch.randn(rows, inputs), torch.randn(gates, inputs), torch.randn(gates, hidden)
    bias = torch.randn(4, 1, hidden)
    projection = torch.empty(4, rows, hidden)
    w_ih_t = weight_ih.view(4, hidden, inputs).transpose(1, 2)
    h = torch.randn(batch, hidden).expand(4, batch, hidden)
    step_addend, step_gates = torch.randn(4, batch, hidden), torch.empty(4, batch, hidden)
    w_hh_t_view = weight_hh.view(4, hidden, hidden).transpose(1, 2)
    w_hh_t_contiguous = w_hh_t_view.contiguous()
    grad_step, grad_hidden = torch.randn(batch, gates), torch.empty(batch, hidden)
    grad_rows = torch.randn(rows, gates)
    hiddens = torch.randn(rows, hidden)

    def per_step(product: Callable[[], object]) -> Callable[[], None]:
        def loop() -> None:
            for _ in range(steps):
                product()
        return loop

    step_flops = 2 * batch * gates * hidden
    dims = f"T*B={rows}, B={batch}, I={inputs}, H={hidden}"
    return [
        Product(f"input projection (4 x ({rows} x {inputs} @ {inputs} x {hidden}) + bias), {dims}",
                lambda: torch.baddbmm(bias, x.expand(4, rows, inputs), w_ih_t, out=projection),
                2 * rows * gates * inputs),
        Product(f"forward step, weights contiguous (4 x ({batch} x {hidden} @ {hidden} x {hidden}) + addend)",
                per_step(lambda: torch.baddbmm(step_addend, h, w_hh_t_contiguous, out=step_gates)), step_flops,
                steps),
        Product("forward step, weights a transposed view (the same product)",
                per_step(lambda: torch.baddbmm(step_addend, h, w_hh_t_view, out=step_gates)), step_flops, steps),
        Product(f"backward step ({batch} x {gates} @ {gates} x {hidden})",
                per_step(lambda: torch.mm(grad_step, weight_hh, out=grad_hidden)), step_flops, steps),
        Product(f"input gradient ({rows} x {gates} @ {gates} x {inputs})",
                lambda: torch.mm(grad_rows, weight_ih), 2 * rows * gates * inputs),
        Product(f"W_ih gradient ({gates} x {rows} @ {rows} x {inputs}, left a transposed view)",
                lambda: torch.mm(grad_rows.t(), x), 2 * rows * gates * inputs),
        Product(f"W_hh gradient ({gates} x {rows} @ {rows} x {hidden}, left a transposed view)",
                lambda: torch.mm(grad_rows.t(), hiddens), 2 * rows * gates * hidden),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ceiling", description=__doc__.split("\n\n")[0])
    add_timing_options(parser, rounds=9, rounds_help="timed rounds (at least 1, after 2 warm-up rounds)")
    args = parser.parse_args(argv)
    shape = apply_timing_options(parser, args)
    products = square_products() + layer_products(shape)
    print(f"shape {shape.name} {shape.sizes()}, {torch.get_num_threads()} threads, {args.rounds} rounds, "
          "float32; median time per call")
    medians = round_robin_medians({product: product.run for product in products}, args.rounds)
    for product in products:
        seconds = medians[product].seconds / product.calls
        print(f"{seconds * 1e3:10.3f} ms  {product.flops / seconds / 1e9:9.3g} GFLOP/s  {product.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
