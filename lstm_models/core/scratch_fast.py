"""``scratch_fast``: the same LSTM as ``scratch``, engineered for speed in plain PyTorch.

Forward, per layer:
- the input projection of all time steps is one matrix product before the loop: ``x_proj = x @ W_ih^T + b``;
- inside the loop only the recurrent product remains, written with ``out=`` into preallocated buffers, so a
  step allocates nothing: one product and eight element-wise kernels, plus seven more when a backward will
  follow, which compute the backward's per-step factors while the step's values are still in cache.

Backward (backpropagation through time derived by hand, ``LSTMLayerFunction.backward``):
- the loop carries only dh and dc: five element-wise kernels and one (B, 4H) x (4H, H) product per step;
- after the loop, the gradients of W_ih, W_hh, the biases and the input are each one large matrix product (or
  sum) over all T*B rows, which is where a CPU's matrix-multiply throughput is reached.

Notation (nn.LSTM's gate order i, f, g, o): z = x W_ih^T + h W_hh^T + b, i = σ(z_i), f = σ(z_f), g = tanh(z_g),
o = σ(z_o), c_t = f c_{t-1} + i g, h_t = o tanh(c_t). With dh_t the total gradient reaching h_t and dc_t that
reaching c_t:  dc_t += dh_t o (1 - tanh²c_t);  dz_i = dc_t g i(1-i);  dz_f = dc_t c_{t-1} f(1-f);
dz_g = dc_t i (1-g²);  dz_o = dh_t tanh(c_t) o(1-o);  dh_{t-1} = dz W_hh;  dc_{t-1} = dc_t f.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from .contract import LSTMParameters


# Inside a layer the gates are stored gate-major, (4, ..., B, H), in the order (o, i, f, g) rather than nn.LSTM's
# (i, f, g, o): the three sigmoid gates are then one contiguous block (one kernel), the three gates whose gradient
# scales with dc (i, f, g) are another, and every element-wise operation reads and writes contiguous memory.
TO_INTERNAL = (3, 0, 1, 2)  # internal gate k is nn.LSTM's gate TO_INTERNAL[k]
TO_NN_LSTM = (1, 2, 3, 0)  # nn.LSTM's gate j is internal gate TO_NN_LSTM[j]


def _gate_major(weight: torch.Tensor, hidden: int) -> torch.Tensor:
    """nn.LSTM's (4H, ...) weight or (4H,) bias as (4, H, ...) in the internal gate order (a copy)."""
    return weight.view(4, hidden, *weight.shape[1:])[list(TO_INTERNAL)]


def _nn_lstm_layout(grad: torch.Tensor) -> torch.Tensor:
    """The inverse of ``_gate_major``: a (4, H, ...) gradient in internal order as nn.LSTM's (4H, ...)."""
    return grad[list(TO_NN_LSTM)].reshape(-1, *grad.shape[2:])


class LSTMLayerFunction(torch.autograd.Function):
    """One LSTM layer over a whole sequence, with a hand-written backward."""

    @staticmethod
    def forward(ctx, x, h0, c0, weight_ih, weight_hh, bias):
        """x (T, B, I), h0/c0 (B, H), bias (4H,) or None -> output (T, B, H), h_n (B, H), c_n (B, H)."""
        seq_len, batch, input_size = x.shape
        hidden = h0.shape[1]
        needs_grad = any(ctx.needs_input_grad)
        w_ih, w_hh = _gate_major(weight_ih, hidden), _gate_major(weight_hh, hidden)  # (4, H, I), (4, H, H)
        x_rows = x.reshape(seq_len * batch, input_size).expand(4, seq_len * batch, input_size)
        if bias is None:
            x_proj = torch.bmm(x_rows, w_ih.transpose(1, 2))  # (4, T*B, H)
        else:
            x_proj = torch.baddbmm(_gate_major(bias, hidden).unsqueeze(1), x_rows, w_ih.transpose(1, 2))
        x_proj = x_proj.view(4, seq_len, batch, hidden)  # (4, T, B, H)
        w_hh_t = w_hh.transpose(1, 2)  # (4, H, H): h @ w_hh_t[k] = h W_k^T
        hiddens = x.new_empty(seq_len + 1, batch, hidden)  # h_0 .. h_T; h_1 .. h_T are the output
        hiddens[0] = h0
        # Per-step buffers, reused: a step allocates nothing. ``companions`` holds (g, c_{t-1}, tanh c_t): what
        # the sigmoid gates' derivatives (i, f, o order is not theirs, see below) are multiplied by.
        gates = x.new_empty(4, batch, hidden)  # o, i, f, g
        companions = x.new_empty(3, batch, hidden)  # tanh c_t, g, c_{t-1}: the partners of o, i, f
        tanh_cell, cell_gate, cell = companions[0], companions[1], companions[2]
        cell.copy_(c0)
        next_cell, in_times_cell = x.new_empty(batch, hidden), x.new_empty(batch, hidden)
        if needs_grad:
            # What the backward needs, computed while each step's values are in cache (the same products over all
            # steps at once, after the loop, stream everything through memory again).
            dz_factors = x.new_empty(4, seq_len, batch, hidden)  # dz = [dh, dc, dc, dc] * dz_factors
            dc_from_dh = x.new_empty(seq_len, batch, hidden)  # o (1 - tanh²c)
            forget = x.new_empty(seq_len, batch, hidden)  # f, for dc_{t-1} = dc_t f_t
            sig_grad = x.new_empty(3, batch, hidden)  # σ'(z) = σ (1 - σ) for o, i, f
        for t in range(seq_len):
            torch.baddbmm(x_proj[:, t], hiddens[t].expand(4, batch, hidden), w_hh_t, out=gates)  # z
            sigmoids = gates[:3].sigmoid_()  # o, i, f
            out_gate, in_gate, forget_gate = sigmoids[0], sigmoids[1], sigmoids[2]
            torch.tanh(gates[3], out=cell_gate)  # g
            torch.mul(in_gate, cell_gate, out=in_times_cell)
            torch.mul(forget_gate, cell, out=next_cell).add_(in_times_cell)  # c_t = f c_{t-1} + i g
            torch.tanh(next_cell, out=tanh_cell)
            torch.mul(out_gate, tanh_cell, out=hiddens[t + 1])  # h_t = o tanh(c_t)
            if needs_grad:
                torch.addcmul(sigmoids, sigmoids, sigmoids, value=-1, out=sig_grad)
                # o(1-o) tanh c, i(1-i) g, f(1-f) c_{t-1}: three factors in one kernel.
                torch.mul(sig_grad, companions, out=dz_factors[:3, t])
                torch.addcmul(in_gate, in_times_cell, cell_gate, value=-1, out=dz_factors[3, t])  # i (1 - g²)
                torch.addcmul(out_gate, hiddens[t + 1], tanh_cell, value=-1, out=dc_from_dh[t])  # o(1-tanh²c)
                forget[t] = forget_gate
            cell.copy_(next_cell)
        if needs_grad:
            ctx.save_for_backward(x, w_ih, w_hh, hiddens, dz_factors, dc_from_dh, forget)
        ctx.has_bias = bias is not None
        return hiddens[1:], hiddens[seq_len].clone(), cell.clone()  # (T, B, H), (B, H), (B, H)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output, grad_h_n, grad_c_n):
        x, w_ih, w_hh, hiddens, dz_factors, dc_from_dh, forget = ctx.saved_tensors
        seq_len, batch, input_size = x.shape
        hidden = w_hh.shape[1]
        # dz of every step, filled backwards, gate-minor (T, B, 4, H) so that one step's dz is a (B, 4H) matrix
        # and dh_{t-1} = dz W_hh is a single product (four products of a quarter the size run slower).
        grad_gates = x.new_empty(seq_len, batch, 4, hidden)
        w_hh_rows = w_hh.view(4 * hidden, hidden)  # (4H, H), internal gate order
        dh = grad_h_n.clone() if grad_h_n is not None else x.new_zeros(batch, hidden)  # (B, H)
        dc = grad_c_n.clone() if grad_c_n is not None else x.new_zeros(batch, hidden)  # (B, H)
        for t in range(seq_len - 1, -1, -1):
            if grad_output is not None:
                dh.add_(grad_output[t])
            dc.addcmul_(dh, dc_from_dh[t])  # the path through h_t = o tanh(c_t)
            step_grad = grad_gates[t].transpose(0, 1)  # (4, B, H) view of (B, 4, H)
            torch.mul(dz_factors[0, t], dh, out=step_grad[0])  # dz_o
            torch.mul(dz_factors[1:, t], dc, out=step_grad[1:])  # dz_i, dz_f, dz_g
            torch.mm(grad_gates[t].view(batch, 4 * hidden), w_hh_rows, out=dh)  # dh_{t-1} = dz W_hh  (B, H)
            dc.mul_(forget[t])  # dc_{t-1} = dc_t f_t

        # After the loop: one large product per gradient, over all T*B rows.
        grad_rows = grad_gates.view(seq_len * batch, 4 * hidden)  # (T*B, 4H), internal gate order
        grad_x = grad_weight_ih = grad_weight_hh = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.mm(grad_rows, w_ih.view(4 * hidden, input_size)).view(seq_len, batch, input_size)
        if ctx.needs_input_grad[3]:
            grad_weight_ih = torch.mm(grad_rows.t(), x.reshape(seq_len * batch, input_size))  # (4H, I)
            grad_weight_ih = _nn_lstm_layout(grad_weight_ih.view(4, hidden, input_size))
        if ctx.needs_input_grad[4]:
            grad_weight_hh = torch.mm(grad_rows.t(), hiddens[:-1].reshape(seq_len * batch, hidden))  # (4H, H)
            grad_weight_hh = _nn_lstm_layout(grad_weight_hh.view(4, hidden, hidden))
        if ctx.has_bias and ctx.needs_input_grad[5]:
            grad_bias = _nn_lstm_layout(grad_rows.sum(0).view(4, hidden))  # (4H,)
        return grad_x, dh, dc, grad_weight_ih, grad_weight_hh, grad_bias


class ScratchFastLSTM(LSTMParameters):
    """nn.LSTM's contract and weights; each layer runs as one ``LSTMLayerFunction``."""

    implementation_name = "scratch_fast"

    def _run_stack(self, x, h0, c0):
        final_h, final_c = [], []
        for layer in range(self.num_layers):
            weight_ih, weight_hh, bias_ih, bias_hh = self.layer_weights(layer)
            # nn.LSTM's two biases always appear as a sum: one bias vector, whose gradient serves both.
            bias = None if bias_ih is None else bias_ih + bias_hh  # (4H,)
            x, h, c = LSTMLayerFunction.apply(x.contiguous(), h0[layer], c0[layer], weight_ih, weight_hh, bias)
            final_h.append(h)
            final_c.append(c)
        if self.num_layers == 1:  # one kernel fewer than stack, which counts at the tutorial's sizes
            return x, final_h[0].unsqueeze(0), final_c[0].unsqueeze(0)  # (T, B, H), (1, B, H), (1, B, H)
        return x, torch.stack(final_h), torch.stack(final_c)  # (T, B, H), (L, B, H), (L, B, H)
