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


class LSTMLayerFunction(torch.autograd.Function):
    """One LSTM layer over a whole sequence, with a hand-written backward."""

    @staticmethod
    def forward(ctx, x, h0, c0, weight_ih, weight_hh, bias):
        """x (T, B, I), h0/c0 (B, H), bias (4H,) or None -> output (T, B, H), h_n (B, H), c_n (B, H)."""
        seq_len, batch, input_size = x.shape
        hidden = h0.shape[1]
        needs_grad = any(ctx.needs_input_grad)
        x_rows = x.reshape(seq_len * batch, input_size)  # (T*B, I)
        if bias is None:
            x_proj = torch.mm(x_rows, weight_ih.t())  # (T*B, 4H)
        else:
            x_proj = torch.addmm(bias, x_rows, weight_ih.t())  # (T*B, 4H)
        x_proj = x_proj.view(seq_len, batch, 4 * hidden)  # (T, B, 4H)
        hiddens = x.new_empty(seq_len + 1, batch, hidden)  # h_0 .. h_T; h_1 .. h_T are the output
        hiddens[0] = h0
        cell, next_cell = c0.clone(), x.new_empty(batch, hidden)  # (B, H) each, swapped every step
        # Per-step scratch, reused: a step allocates nothing.
        pre, sig = x.new_empty(batch, 4 * hidden), x.new_empty(batch, 4 * hidden)  # (B, 4H)
        cell_gate, in_times_cell, tanh_cell = (x.new_empty(batch, hidden) for _ in range(3))  # (B, H)
        if needs_grad:
            # What the backward needs, computed here while each step's values are in cache (the same products
            # over all steps at once, after the loop, cost several times more: they stream through memory).
            dz_factors = x.new_empty(seq_len, batch, 4 * hidden)  # dz = [dc, dc, dc, dh] * dz_factors
            dc_from_dh = x.new_empty(seq_len, batch, hidden)  # o (1 - tanh²c)
            forget = x.new_empty(seq_len, batch, hidden)  # f, for dc_{t-1} = dc_t f_t
            sig_grad = x.new_empty(batch, 4 * hidden)  # σ'(z) = σ (1 - σ)
        weight_hh_t = weight_hh.t()  # (H, 4H)
        for t in range(seq_len):
            torch.addmm(x_proj[t], hiddens[t], weight_hh_t, out=pre)  # (B, 4H)
            # One sigmoid over all four gates (the cell gate's quarter is unused) beats three strided ones.
            torch.sigmoid(pre, out=sig)  # i, f, o
            torch.tanh(pre[:, 2 * hidden:3 * hidden], out=cell_gate)  # g
            in_gate, forget_gate, out_gate = sig[:, :hidden], sig[:, hidden:2 * hidden], sig[:, 3 * hidden:]
            torch.mul(in_gate, cell_gate, out=in_times_cell)
            torch.mul(forget_gate, cell, out=next_cell)
            next_cell.add_(in_times_cell)  # c_t = f c_{t-1} + i g
            torch.tanh(next_cell, out=tanh_cell)
            torch.mul(out_gate, tanh_cell, out=hiddens[t + 1])  # h_t = o tanh(c_t)
            if needs_grad:
                factors = dz_factors[t]  # (B, 4H)
                torch.addcmul(sig, sig, sig, value=-1, out=sig_grad)
                torch.mul(sig_grad[:, :hidden], cell_gate, out=factors[:, :hidden])  # g i(1-i)
                torch.mul(sig_grad[:, hidden:2 * hidden], cell, out=factors[:, hidden:2 * hidden])  # c f(1-f)
                torch.addcmul(in_gate, in_times_cell, cell_gate, value=-1,
                              out=factors[:, 2 * hidden:3 * hidden])  # i (1 - g²)
                torch.mul(sig_grad[:, 3 * hidden:], tanh_cell, out=factors[:, 3 * hidden:])  # tanh(c) o(1-o)
                torch.addcmul(out_gate, hiddens[t + 1], tanh_cell, value=-1, out=dc_from_dh[t])  # o (1-tanh²c)
                forget[t] = forget_gate
            cell, next_cell = next_cell, cell
        if needs_grad:
            ctx.save_for_backward(x, weight_ih, weight_hh, hiddens, dz_factors, dc_from_dh, forget)
        ctx.has_bias = bias is not None
        return hiddens[1:], hiddens[seq_len].clone(), cell  # (T, B, H), (B, H), (B, H)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output, grad_h_n, grad_c_n):
        x, weight_ih, weight_hh, hiddens, dz_factors, dc_from_dh, forget = ctx.saved_tensors
        seq_len, batch, input_size = x.shape
        hidden = weight_hh.shape[1]
        grad_gates = x.new_empty(seq_len, batch, 4 * hidden)  # dz of every step, filled backwards
        dh = grad_h_n.clone() if grad_h_n is not None else x.new_zeros(batch, hidden)  # (B, H)
        dc = grad_c_n.clone() if grad_c_n is not None else x.new_zeros(batch, hidden)  # (B, H)
        for t in range(seq_len - 1, -1, -1):
            if grad_output is not None:
                dh.add_(grad_output[t])
            dc.addcmul_(dh, dc_from_dh[t])  # the path through h_t = o tanh(c_t)
            step_grad = grad_gates[t]  # (B, 4H)
            torch.mul(dz_factors[t].view(batch, 4, hidden)[:, :3], dc.unsqueeze(1),
                      out=step_grad.view(batch, 4, hidden)[:, :3])  # dz_i, dz_f, dz_g
            torch.mul(dz_factors[t, :, 3 * hidden:], dh, out=step_grad[:, 3 * hidden:])  # dz_o
            torch.mm(step_grad, weight_hh, out=dh)  # dh_{t-1} = dz W_hh   (B, H)
            dc.mul_(forget[t])  # dc_{t-1} = dc_t f_t

        # After the loop: one large product per gradient, over all T*B rows.
        grad_rows = grad_gates.view(seq_len * batch, 4 * hidden)  # (T*B, 4H)
        grad_x = grad_weight_ih = grad_weight_hh = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.mm(grad_rows, weight_ih).view(seq_len, batch, input_size)  # (T, B, I)
        if ctx.needs_input_grad[3]:
            grad_weight_ih = torch.mm(grad_rows.t(), x.reshape(seq_len * batch, input_size))  # (4H, I)
        if ctx.needs_input_grad[4]:
            grad_weight_hh = torch.mm(grad_rows.t(), hiddens[:-1].reshape(seq_len * batch, hidden))  # (4H, H)
        if ctx.has_bias and ctx.needs_input_grad[5]:
            grad_bias = grad_rows.sum(0)  # (4H,)
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
