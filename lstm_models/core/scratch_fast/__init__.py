"""``scratch_fast``: nn.LSTM's function engineered for speed (design note: docs/scratch_fast.md).

Public here:
- ``ScratchFastLSTM``, the module the registry builds, and ``LSTMLayerFunction``, one layer as an autograd function;
- ``release_memory()``: hand back what the layer keeps between calls (pooled buffers, captured CUDA graphs), for a
  process that is done with it;
- ``fused_steps.path()``: which CPU loops run here, ``"fused"`` (compiled) or ``"plain"`` (PyTorch operations);
- the switches ``fused_steps.set_enabled``, ``fused_cell_forward.set_enabled``, ``loop_graphs.set_enabled`` and
  ``huge_pages.set_enabled`` (also ``LSTM_BENCH_FUSED_STEPS=0``, ``LSTM_BENCH_FUSED_CELL=0``,
  ``LSTM_BENCH_CUDA_GRAPHS=0``, ``LSTM_BENCH_HUGE_PAGES=0`` in the environment).

Beneath the layer (``layer``): ``fused_steps`` builds and loads the compiled CPU loops (``csrc/fused_steps.cpp``)
and ``fused_layer`` runs a layer on them; ``workspace`` pools large buffers, ``huge_pages`` makes them,
``loop_graphs`` replays CUDA time loops, ``fused_cell_forward`` runs the CUDA forward's cell as one kernel,
``backward_factors`` computes what the plain backward needs, ``tracing`` says when to keep to plain ops.
"""

from . import fused_cell_forward, fused_steps, huge_pages, loop_graphs, workspace
from .layer import LSTMLayerFunction, ScratchFastLSTM


def release_memory() -> None:
    """Hand back every buffer and captured loop kept between calls; the next call makes them anew."""
    workspace.clear()
    loop_graphs.clear()


__all__ = ["LSTMLayerFunction", "ScratchFastLSTM", "fused_cell_forward", "fused_steps", "huge_pages",
           "loop_graphs", "release_memory"]
