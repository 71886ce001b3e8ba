"""``scratch``: the readable reference LSTM, written from tensor operations; autograd does the backward.

Cell -> layer -> stack, in nn.LSTM's parameter names and gate order (input, forget, cell, output), so that any
``nn.LSTM`` state dict loads key by key. The equations are the ones in the ``torch.nn.LSTM`` documentation:

    i = sigmoid(W_ii x + b_ii + W_hi h + b_hi)      f = sigmoid(W_if x + b_if + W_hf h + b_hf)
    g = tanh(W_ig x + b_ig + W_hg h + b_hg)         o = sigmoid(W_io x + b_io + W_ho h + b_ho)
    c' = f * c + i * g                              h' = o * tanh(c')
"""

from __future__ import annotations

import torch

from .contract import LSTMParameters


def lstm_cell(x_t: torch.Tensor, h: torch.Tensor, c: torch.Tensor, weight_ih: torch.Tensor,
              weight_hh: torch.Tensor, bias_ih: torch.Tensor | None, bias_hh: torch.Tensor | None
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """One time step: x_t (B, I), h and c (B, H) -> new h and c (B, H)."""
    gates = x_t @ weight_ih.T + h @ weight_hh.T  # (B, 4H)
    if bias_ih is not None:
        gates = gates + bias_ih + bias_hh  # (B, 4H)
    in_gate, forget_gate, cell_gate, out_gate = gates.chunk(4, dim=1)  # 4 x (B, H)
    c = torch.sigmoid(forget_gate) * c + torch.sigmoid(in_gate) * torch.tanh(cell_gate)
    h = torch.sigmoid(out_gate) * torch.tanh(c)
    return h, c


def lstm_layer(x: torch.Tensor, h: torch.Tensor, c: torch.Tensor, weights: tuple, cell=lstm_cell
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One layer over the sequence: x (T, B, I), h and c (B, H) -> outputs (T, B, H), last h and c. ``cell`` is
    ``lstm_cell`` or a function computing the same (``compiled``'s)."""
    outputs = []
    for x_t in x.unbind(0):  # T x (B, I)
        h, c = cell(x_t, h, c, *weights)
        outputs.append(h)
    return torch.stack(outputs), h, c  # (T, B, H)


class ScratchLSTM(LSTMParameters):
    """A stack of ``lstm_layer``s (``LSTMParameters._run_stack``)."""

    implementation_name = "scratch"

    def _run_layer(self, x, h0, c0, weights):
        return lstm_layer(x, h0, c0, weights)  # (T, B, H), (B, H), (B, H)
