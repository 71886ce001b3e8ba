"""An LSTM built on ``torch.nn.LSTMCell``, written as a user of lstm-bench writes their own.

Two things make it comparable with ``torch.nn.LSTM`` in lstm-bench: it takes nn.LSTM's constructor arguments
and call contract (batched or unbatched input, ``batch_first``, an optional ``(h0, c0)``), and its parameters
carry nn.LSTM's names (``weight_ih_l0``, ...), so that nn.LSTM's state dict loads key by key. The cells compute
with those very tensors.

    python -m lstm_models.check cell=cell_lstm:CellLSTM      # with this folder on PYTHONPATH
"""

from __future__ import annotations

import torch
from torch import nn


class CellLSTM(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0,
                 device=None, dtype=None):
        super().__init__()
        if dropout or bidirectional or proj_size:
            raise ValueError("CellLSTM: dropout, bidirectional and proj_size are not supported")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.batch_first = batch_first
        # A plain list: the cells are not submodules, so their parameters appear once, under nn.LSTM's names.
        self.cells = [nn.LSTMCell(input_size if layer == 0 else hidden_size, hidden_size, bias=bias, device=device,
                                  dtype=dtype) for layer in range(num_layers)]
        for layer, cell in enumerate(self.cells):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                if getattr(cell, name) is not None:
                    self.register_parameter(f"{name}_l{layer}", getattr(cell, name))

    def forward(self, x: torch.Tensor, hx: tuple[torch.Tensor, torch.Tensor] | None = None):
        unbatched = x.dim() == 2
        if unbatched:
            x = x.unsqueeze(1)  # (T, 1, I)
        elif self.batch_first:
            x = x.transpose(0, 1)  # (T, B, I)
        if hx is None:
            zeros = x.new_zeros(self.num_layers, x.size(1), self.hidden_size)
            hx = (zeros, zeros)
        elif unbatched:
            hx = (hx[0].unsqueeze(1), hx[1].unsqueeze(1))  # (L, 1, H)
        h_n, c_n = [], []
        for layer, cell in enumerate(self.cells):
            h, c = hx[0][layer], hx[1][layer]
            outputs = []
            for x_t in x:
                h, c = cell(x_t, (h, c))
                outputs.append(h)
            x = torch.stack(outputs)  # (T, B, H): the next layer's input
            h_n.append(h)
            c_n.append(c)
        h_n, c_n = torch.stack(h_n), torch.stack(c_n)  # (L, B, H)
        if unbatched:
            return x.squeeze(1), (h_n.squeeze(1), c_n.squeeze(1))
        return (x.transpose(0, 1) if self.batch_first else x), (h_n, c_n)
