"""``scratch_fast``: nn.LSTM's function engineered for speed in plain PyTorch (design note: docs/scratch_fast.md).

Public here:
- ``ScratchFastLSTM``, the module the registry builds, and ``LSTMLayerFunction``, one layer as an autograd function;
- ``release_memory()``: hand back what the layer keeps between calls (pooled buffers, small-call plans, captured
  CUDA graphs), for a process that is done with it;
- the switches ``fused_cell_forward.set_enabled``, ``loop_graphs.set_enabled`` and ``huge_pages.set_enabled``
  (also ``LSTM_BENCH_FUSED_CELL=0``, ``LSTM_BENCH_CUDA_GRAPHS=0``, ``LSTM_BENCH_HUGE_PAGES=0`` in the environment).

Beneath the layer (``layer``): ``workspace`` pools large buffers, ``huge_pages`` makes them, ``step_plans`` keeps
small calls' buffers, ``loop_graphs`` replays CUDA time loops, ``fused_cell_forward`` runs the CUDA forward's cell
as one kernel, ``backward_factors`` computes what the backward needs, ``tracing`` says when to keep to plain ops.
"""

from . import fused_cell_forward, huge_pages, loop_graphs, step_plans, workspace
from .layer import LSTMLayerFunction, ScratchFastLSTM


def release_memory() -> None:
    """Hand back every buffer, plan and captured loop kept between calls; the next call makes them anew."""
    step_plans.clear()
    workspace.clear()
    loop_graphs.clear()


__all__ = ["LSTMLayerFunction", "ScratchFastLSTM", "fused_cell_forward", "huge_pages", "loop_graphs",
           "release_memory"]
