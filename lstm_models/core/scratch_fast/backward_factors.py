"""What ``scratch_fast``'s hand-written backward reads, computed over all steps at once from a forward's kept states.

Two forwards keep their states for this: the hand-written loop replayed as a CUDA graph
(``scratch_fast.forward_steps_keeping_states``) and the CUDA loop on PyTorch's fused cell (``fused_cell_forward``).
The eager CPU loop computes the same values step by step instead, while each step's values are in cache
(``scratch_fast.forward_steps``).
"""

from __future__ import annotations

import torch

from . import workspace

# nn.LSTM's gate order, kept throughout: i, f, g, o. i, f, g (the gates whose gradient scales with dc) are one
# contiguous block, and so the whole layer works on nn.LSTM's weights and gradients as they are, with no reordering.
IN, FORGET, CELL, OUT = range(4)


def from_states(gates, cells, hiddens, tanh_cells, in_times_cell, like: torch.Tensor):
    """(dz_factors (T, 4, B, H), o (1 - tanh²c) (T, B, H), f (T, B, H)), in new buffers from the workspace pool.

    ``gates`` (T, 4, B, H), any strides: the activated i, f, g, o of every step; ``cells`` c_0 .. c_T and ``hiddens``
    h_0 .. h_T, (T + 1, B, H); ``tanh_cells`` tanh c_1 .. tanh c_T and ``in_times_cell`` i g, (T, B, H). Seven kernels,
    however long the sequence."""
    seq_len, _, batch, hidden = gates.shape
    factors = workspace.take((seq_len, 4, batch, hidden), like)
    torch.addcmul(gates, gates, gates, value=-1, out=factors)  # σ (1 - σ) (g's slot overwritten below)
    factors[:, IN].mul_(gates[:, CELL])  # i(1-i) g
    factors[:, FORGET].mul_(cells[:-1])  # f(1-f) c_{t-1}
    factors[:, OUT].mul_(tanh_cells)  # o(1-o) tanh c_t
    torch.addcmul(gates[:, IN], in_times_cell, gates[:, CELL], value=-1, out=factors[:, CELL])  # i (1 - g²)
    dc_from_dh = torch.addcmul(gates[:, OUT], hiddens[1:], tanh_cells, value=-1,
                               out=workspace.take((seq_len, batch, hidden), like))  # o (1 - tanh²c)
    forget = workspace.take((seq_len, batch, hidden), like).copy_(gates[:, FORGET])
    return factors, dc_from_dh, forget
