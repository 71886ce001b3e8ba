"""One layer's forward and backward on the compiled time loops (``fused_steps``), CPU, float32 and float64.

The same function as the plain loops in ``layer``, laid out as nn.LSTM lays it out (a step's gates a (B, 4H) row
block, i, f, g, o), so no weight is reordered or rescaled:
- forward: the input projection of all steps is one matrix product (the loop adds the biases as it reads it); the
  loop overwrites it step by step with the activated gates, which the backward reads, together with every step's
  cell state and its tanh;
- backward: the loop leaves every step's dz in one (T, B, 4H) buffer, from which ``layer`` computes the weights'
  and the input's gradients after the loop, each one large matrix product.

The large buffers come from ``workspace``, like the plain path's: fresh ones cost page faults on every call.
"""

from __future__ import annotations

import torch

from . import fused_steps, workspace


def layer_forward(x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, needs_grad: bool):
    """x (T, B, I), h0/c0 (B, H) -> output (T, B, H), h_n, c_n, and what ``layer_backward`` needs (None unless
    ``needs_grad``): (x, weight_ih, weight_hh, hiddens, gates, cells, tanh_cells), the last three pooled."""
    seq_len, batch, input_size = x.shape
    hidden = h0.shape[1]
    gates = workspace.take((seq_len, batch, 4 * hidden), x)
    x_rows = x.reshape(seq_len * batch, input_size)
    gate_rows = gates.view(seq_len * batch, 4 * hidden)
    torch.mm(x_rows, weight_ih.t(), out=gate_rows)
    # nn.LSTM's two biases only ever appear as their sum
    bias = torch.add(bias_ih, bias_hh) if bias_ih is not None else x.new_zeros(4 * hidden)
    hiddens = x.new_empty(seq_len + 1, batch, hidden)  # h_0 .. h_T; h_1 .. h_T are the output
    cells = workspace.take((seq_len + 1, batch, hidden), x)  # c_0 .. c_T
    tanh_cells = workspace.take((seq_len, batch, hidden), x) if needs_grad else None
    hiddens[0] = h0
    cells[0] = c0
    fused_steps.ops().forward_steps(gates, bias, weight_hh.contiguous(), hiddens, cells, tanh_cells)
    c_n = cells[seq_len].clone()
    if not needs_grad:
        workspace.give_back(gates)
        workspace.give_back(cells)
        return hiddens[1:], hiddens[seq_len].clone(), c_n, None
    return hiddens[1:], hiddens[seq_len].clone(), c_n, (x, weight_ih, weight_hh, hiddens, gates, cells, tanh_cells)


def layer_backward(saved, grad_output, grad_h_n, grad_c_n):
    """From the outputs' gradients (any may be None): (every step's dz (T, B, 4, H), pooled: give it back when done;
    dh_0; dc_0)."""
    x, _, weight_hh, _, gates, cells, tanh_cells = saved
    seq_len, batch, hidden = tanh_cells.shape
    # The loop adds each step's output gradient to dh itself.
    grad_output = grad_output.contiguous() if grad_output is not None else None
    dh = grad_h_n.clone(memory_format=torch.contiguous_format) if grad_h_n is not None else x.new_zeros(batch, hidden)
    dc = grad_c_n.clone(memory_format=torch.contiguous_format) if grad_c_n is not None else x.new_zeros(batch, hidden)
    grad_gates = workspace.take((seq_len, batch, 4 * hidden), x)
    fused_steps.ops().backward_steps(gates, cells, tanh_cells, weight_hh.contiguous(), grad_output, dh, dc,
                                     grad_gates)
    return grad_gates.view(seq_len, batch, 4, hidden), dh, dc
