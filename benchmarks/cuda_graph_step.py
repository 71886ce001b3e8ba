"""A training step on CUDA, called as a training loop calls it and replayed as one captured CUDA graph, per
implementation.

    python -m benchmarks.cuda_graph_step --shape large --rounds 50 [--impls native,scratch_fast,scratch]
    python -m benchmarks.cuda_graph_step --shape large --tf32 off     # cuDNN held to full float32 products

On a GPU a hand-written LSTM issues a dozen or so small kernels per time step, and the host's Python and launch
path can take longer to issue each one than the GPU takes to run it; cuDNN's LSTM issues a few per pass. Capturing
the whole training step (forward and backward) once as a CUDA graph (``torch.cuda.CUDAGraph``, plain PyTorch) and
replaying it takes the host out of the loop: the replay's time is the GPU's own work. The two figures side by side
say how much of a ratio to cuDNN is launch cost and how much is kernels. A graph holds fixed shapes and addresses,
so replaying one suits a training loop of fixed batch and sequence length.

The "called" column is the step as a training loop runs it. For ``scratch_fast`` that already replays its two time
loops as graphs of their own (``lstm_models/core/scratch_fast/loop_graphs.py``, from a shape's second call; the rest
of the step is issued call by call); ``LSTM_BENCH_CUDA_GRAPHS=0`` in the environment turns that off, and every
kernel is then launched one by one. Inside the whole-step capture the layer replays nothing of its own: its kernels
are recorded into the step's graph, the forward computing the backward's factors in bulk after its loop, as its own
graphs do.

Precision: by PyTorch's defaults cuDNN may run a float32 LSTM's products in TF32 on the GPU's tensor cores
(``torch.backends.cudnn.allow_tf32``, on), while ``torch.mm`` keeps full float32 (``torch.backends.cuda.matmul.
allow_tf32``, off). ``--tf32 off`` turns both off, ``--tf32 on`` both on, for like-for-like products; the header
prints what was in force.

Each implementation is checked against nn.LSTM in float64 on CUDA before it is timed, and each graph's replay must
reproduce its eager step's output and gradients, before and after the timing. Times are medians of interleaved
rounds (``benchmarks.round_robin``), each call ending in a device synchronisation.
"""

from __future__ import annotations

import argparse
import sys

import torch

from lstm_models import label_of

from benchmarks.cli_options import add_selection_options, apply_selection, checked_or_refused
from benchmarks.round_robin import round_robin_medians
from benchmarks.timing import Passes, build_for

SIDE_STREAM_WARMUP_STEPS = 3  # torch.cuda.graph's advice: run the code a few times on a side stream first
TF32_SETTINGS = {"default": None, "on": True, "off": False}


def set_tf32(choice: str) -> None:
    """Apply ``--tf32``: ``default`` leaves PyTorch's settings as they are."""
    allowed = TF32_SETTINGS[choice]
    if allowed is not None:
        torch.backends.cudnn.allow_tf32 = allowed
        torch.backends.cuda.matmul.allow_tf32 = allowed


def warm_up_on_side_stream(step, steps: int = SIDE_STREAM_WARMUP_STEPS) -> None:
    """What ``torch.cuda.graph``'s documentation asks before a capture: call ``step`` a few times on a side stream,
    so that lazy initialisation (cuBLAS handles and workspaces, autograd's state) happens there and not in the graph,
    then make the current stream wait for it."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(steps):
            step()
    torch.cuda.current_stream().wait_stream(side)


def _snapshot(passes: Passes) -> list[torch.Tensor]:
    """The step's output and every gradient, copied."""
    return [passes.output.detach().clone(), passes.x.grad.clone()] + [
        param.grad.clone() for param in passes.module.parameters()]


def _fresh_step(passes: Passes) -> None:
    """A training step that shares nothing with the step before it.

    Dropping the last output frees its autograd graph before the next forward is recorded. Otherwise each leaf's
    gradient accumulator (kept while any graph holds it) would live on from step to step, and with it the stream it
    was made on; a captured backward that accumulates on another stream than the capture's is refused by CUDA."""
    passes.output = None
    passes.clear_grads()
    passes.training_step()


class CapturedStep:
    """A training step captured once as a CUDA graph; calling it replays the graph and synchronises.

    The graph reads and writes the addresses it was captured with: the module's weights, the inputs and the
    gradients. It therefore holds ``passes``, whose tensors own that memory; freed, their memory would be handed to
    other tensors while the graph still wrote into it.

    The gradients are set to None before capture, so that the backward allocates them inside the graph's memory
    pool: every replay then writes the same ``.grad`` tensors afresh instead of accumulating into them."""

    def __init__(self, passes: Passes):
        self.passes = passes
        _fresh_step(passes)
        torch.cuda.synchronize()
        self.eager_results = _snapshot(passes)
        warm_up_on_side_stream(lambda: _fresh_step(passes))
        passes.output = None
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            _fresh_step(passes)

    def __call__(self) -> None:
        self.graph.replay()
        torch.cuda.synchronize()

    def check_against_eager(self, when: str) -> None:
        """Replay once and compare the output and every gradient with the eager step's."""
        self()
        for got, want in zip(_snapshot(self.passes), self.eager_results):
            torch.testing.assert_close(got, want, msg=lambda text: f"the graph's replay {when} differs from the "
                                                                   f"eager step: {text}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cuda_graph_step",
                                     description=__doc__.split("\n\n")[0])
    add_selection_options(parser, rounds=30, rounds_help="timed rounds (at least 1, after 2 warm-up rounds); "
                                                         "ratios are to the first implementation")
    parser.add_argument("--tf32", choices=list(TF32_SETTINGS), default="default",
                        help="TF32 products for float32: PyTorch's defaults (cuDNN on, torch.mm off), or both on, "
                             "or both off")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        parser.error("CUDA is not available on this machine (torch.cuda.is_available() is False); "
                     "this command times CUDA graphs")
    impls, shape = apply_selection(parser, args, fewest_impls=1)
    set_tf32(args.tf32)
    calls = {}
    for impl in impls:
        calls[impl, "called"] = checked_or_refused(parser, impl, shape, "cuda").forward_backward  # as training calls it
        calls[impl, "graph"] = CapturedStep(Passes(build_for(impl, shape, "cuda"), shape, "cuda"))
        calls[impl, "graph"].check_against_eager("before timing")
    medians = round_robin_medians(calls, args.rounds)
    for impl in impls:  # the called steps ran in between: a graph writing memory it does not own shows here
        calls[impl, "graph"].check_against_eager("after timing")
    print(f"shape {shape.name} {shape.sizes()}, {torch.cuda.get_device_name()}, torch {torch.__version__}, "
          f"cuDNN {torch.backends.cudnn.version()}, TF32 cuDNN {torch.backends.cudnn.allow_tf32} "
          f"torch.mm {torch.backends.cuda.matmul.allow_tf32}, {args.rounds} rounds")
    print(f"{'impl':<13} {'called ms':>9} {'ratio':>7} {'graph ms':>9} {'ratio':>7} {'called/graph':>12}")
    for impl in impls:
        called, graph = medians[impl, "called"].seconds, medians[impl, "graph"].seconds
        called_ratio = called / medians[impls[0], "called"].seconds
        graph_ratio = graph / medians[impls[0], "graph"].seconds
        print(f"{label_of(impl):<13} {called * 1e3:9.3f} {called_ratio:6.2f}x {graph * 1e3:9.3f} {graph_ratio:6.2f}x "
              f"{called / graph:11.2f}x")
    print(f"ratios are to {impls[0]}'s in the same column")
    return 0


if __name__ == "__main__":
    sys.exit(main())
