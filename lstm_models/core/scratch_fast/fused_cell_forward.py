"""``scratch_fast``'s forward on CUDA: each step's element-wise work in one kernel, ATen's fused LSTM cell.

Why: on CUDA, even replayed as a graph, the hand-written step is one product and six element-wise kernels, each a
few microseconds of the GPU for a (B, H) tensor: at T = 100 the forward's loop is mostly those kernels, and the
forward alone ran well behind cuDNN (docs/scratch_fast.md, "CUDA"). PyTorch
ships, for ``nn.LSTMCell`` on CUDA, a kernel that does a step's whole cell in one launch:
``aten::_thnn_fused_lstm_cell(input_gates, hidden_gates, cx)`` -> (h_t, c_t, the four activated gates). With it a
step is two kernels: the recurrent product and the cell. The operator is part of PyTorch itself (no compiled
extension, no ``torch.compile``); it is private, so where it is missing the layer keeps its own kernels.

Only the forward uses it. The backward stays ``scratch_fast``'s own, derived by hand: the factors it needs are
computed here from the activated gates and the cell states after the loop, over all steps at once.

Layout: gate-minor, as nn.LSTM and the fused kernel have it. The input projection of all steps is one (T*B, I) x
(I, 4H) product with the biases added; a step's gates are a (B, 4H) row block in nn.LSTM's order i, f, g, o.

The kernel returns new tensors (it has no ``out=`` form), so the loop keeps a chunk of steps' results and stacks
each chunk into the call's buffers: three kernels per ``CHUNK`` steps, and at most a chunk of steps' results alive
at once, which a captured graph's memory pool then reuses.

``LSTM_BENCH_FUSED_CELL=0`` in the environment (or ``set_enabled(False)``) turns it off: the CUDA forward then runs
the hand-written kernels, as on CPU, which lets one checkout time both.
"""

from __future__ import annotations

import os

import torch

from . import backward_factors, loop_graphs
from .backward_factors import CELL, IN  # nn.LSTM's gate order, as the fused kernel lays out its gates
from .tracing import tracing

# Steps whose results are kept before being stacked into the call's buffers: 3 kernels per chunk, against 2 per
# step; a chunk of (B, 6H) results (12 MB at B = 64, H = 512) alive at once.
CHUNK = 16

_FUSED_CELL = getattr(torch.ops.aten, "_thnn_fused_lstm_cell", None)  # None in a build without it
_enabled = os.environ.get("LSTM_BENCH_FUSED_CELL", "1") != "0"


def set_enabled(enabled: bool) -> None:
    """Turn the fused cell on or off for the whole process (it starts on unless ``LSTM_BENCH_FUSED_CELL=0``)."""
    global _enabled
    _enabled = enabled


def enabled() -> bool:
    return _enabled


def used_for(like: torch.Tensor) -> bool:
    """Whether the forward for ``like`` runs through the fused cell: on CUDA when PyTorch has the kernel and it is
    turned on. Never while tracing: a program exported on CUDA (MLflow's pt2 format, say) keeps plain operations
    that every device runs. Cheap: called on every CPU call too."""
    return like.is_cuda and _enabled and _FUSED_CELL is not None and not tracing()


def cell_step(input_gates, hidden_gates, cell):
    """One step's cell in one kernel: (h_t, c_t, the activated gates i, f, g, o side by side)."""
    return _FUSED_CELL.default(input_gates, hidden_gates, cell)


class FusedForwardBuffers:
    """What the fused loop reads and writes: per call, or static, made once, for a loop that ``loop_graphs``
    captures and replays (zeroed then, so that the warm-up run before the capture computes on numbers)."""

    __slots__ = ("x_proj", "weight_hh", "hiddens", "cells", "gates")

    def __init__(self, like, seq_len, batch, hidden, keep_gates, zeroed=False):
        new = like.new_zeros if zeroed else like.new_empty
        self.x_proj = new(seq_len, batch, 4 * hidden)  # x W_ih^T + b_ih + b_hh, gate-minor
        self.weight_hh = new(4 * hidden, hidden)  # nn.LSTM's W_hh as it is
        self.hiddens = new(seq_len + 1, batch, hidden)  # h_0 .. h_T
        # c_0 .. c_T with a backward; without one, only c_0 and c_T (a static inference loop keeps its buffers)
        self.cells = new(seq_len + 1 if keep_gates else 2, batch, hidden)
        self.gates = new(seq_len, batch, 4 * hidden) if keep_gates else None  # activated i, f, g, o of every step

    def final_cell(self):
        return self.cells[-1]


def forward_steps(buffers: FusedForwardBuffers) -> None:
    """The time loop: one product and one fused cell per step, and every ``CHUNK`` steps their results stacked into
    ``buffers`` (the hidden states always; the cell states and gates when a backward follows)."""
    seq_len = buffers.x_proj.shape[0]
    keep_states = buffers.gates is not None
    x_proj_steps = buffers.x_proj.unbind(0)  # T views (B, 4H)
    weight_hh_t = buffers.weight_hh.t()
    hidden, cell = buffers.hiddens[0], buffers.cells[0]
    for start in range(0, seq_len, CHUNK):
        stop = min(start + CHUNK, seq_len)
        hiddens, cells, gates = [], [], []
        for t in range(start, stop):
            hidden, cell, activated = cell_step(x_proj_steps[t], torch.mm(hidden, weight_hh_t), cell)
            hiddens.append(hidden)
            if keep_states:  # else each step's cell state and gates are freed as the next step begins
                cells.append(cell)
                gates.append(activated)
        torch.stack(hiddens, out=buffers.hiddens[start + 1:stop + 1])
        if keep_states:
            torch.stack(cells, out=buffers.cells[start + 1:stop + 1])
            torch.stack(gates, out=buffers.gates[start:stop])
    if not keep_states:
        buffers.cells[-1].copy_(cell)


def factors_from_gates(buffers: FusedForwardBuffers, like: torch.Tensor):
    """What ``scratch_fast``'s backward needs, as its hand-written forward saves it, from the activated gates and the
    states (``backward_factors``), over all steps at once."""
    seq_len, batch, hidden = buffers.hiddens.shape[0] - 1, buffers.hiddens.shape[1], buffers.hiddens.shape[2]
    gates = buffers.gates.view(seq_len, batch, 4, hidden).transpose(1, 2)  # (T, 4, B, H), a gate-major view
    in_times_cell = gates[:, IN] * gates[:, CELL]
    return backward_factors.from_states(gates, buffers.cells, buffers.hiddens, torch.tanh(buffers.cells[1:]),
                                        in_times_cell, like)


def write_inputs(buffers: FusedForwardBuffers, x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh) -> None:
    """The input projection of all steps (one product, the biases' sum added by it), W_hh, h0 and c0."""
    seq_len, batch, input_size = x.shape
    x_rows = x.reshape(seq_len * batch, input_size)
    projection_rows = buffers.x_proj.view(seq_len * batch, -1)
    if bias_ih is None:
        torch.mm(x_rows, weight_ih.t(), out=projection_rows)
    else:
        torch.addmm(torch.add(bias_ih, bias_hh), x_rows, weight_ih.t(), out=projection_rows)
    buffers.weight_hh.copy_(weight_hh)
    buffers.hiddens[0] = h0
    buffers.cells[0] = c0


def layer_forward(x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, needs_grad: bool):
    """``scratch_fast.layer_forward`` through the fused cell, with the same results: output (T, B, H), h_n, c_n,
    and what the backward needs (None unless ``needs_grad``)."""
    seq_len, batch, _ = x.shape
    hidden = h0.shape[1]
    inputs = (x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh)
    # After the first call of a shape, the loop is a captured graph on static buffers (loop_graphs); inside a
    # caller's own capture, or eagerly, the same loop runs on buffers of the call's own.
    static = loop_graphs.loop_for(
        "fused_forward", x, (seq_len, batch, hidden, needs_grad),
        lambda: FusedForwardBuffers(x, seq_len, batch, hidden, needs_grad, zeroed=True), forward_steps,
    ) if loop_graphs.may_replay(x) else None
    if static is None:
        buffers = FusedForwardBuffers(x, seq_len, batch, hidden, needs_grad)
        write_inputs(buffers, *inputs)
        forward_steps(buffers)
        hiddens, final_cell = buffers.hiddens, buffers.final_cell().clone()
        factors = factors_from_gates(buffers, x) if needs_grad else None
    else:
        # One call at a time writes its inputs, replays, copies out what it returns and launches what it saves.
        with static as buffers:
            write_inputs(buffers, *inputs)
            static.replay()
            hiddens, final_cell = buffers.hiddens.clone(), buffers.final_cell().clone()
            factors = factors_from_gates(buffers, x) if needs_grad else None
    saved = (x, weight_ih, weight_hh, hiddens, *factors) if needs_grad else None
    return hiddens[1:], hiddens[seq_len].clone(), final_cell, saved
