"""``scratch_fast``: the same LSTM as ``scratch``, engineered for speed.

On CPU, in float32 and float64, each layer's time loops run as compiled code (``fused_steps``, ``fused_layer``):
per step the recurrent product on PyTorch's BLAS and one fused pass over the step's element-wise work. This module
holds the autograd function that dispatches to them, the gradients after the loop that both paths share, and the
plain PyTorch loops, which run where the compiled ones cannot (no compiler, a failed build, other dtypes, while
tracing) and on CUDA. The plain loops, per layer:

Forward:
- the input projection of all time steps is one matrix product before the loop: ``x_proj = x @ W_ih^T + b``;
- inside the loop only the recurrent product remains, written with ``out=`` into preallocated buffers, so a
  step allocates nothing: one product and six element-wise kernels, plus five more when a backward will
  follow, which compute the backward's per-step factors while the step's values are still in cache; the cell
  state alternates between two buffers instead of being copied;
- the gates live gate-major, (4, B, H), in nn.LSTM's order (i, f, g, o), so every element-wise kernel reads and
  writes contiguous memory, and one sigmoid covers all four gates: g's rows of the weights are doubled, so that
  tanh z_g = 2σ(2 z_g) - 1 costs an affine kernel instead of a tanh (three times a sigmoid's cost here).

Backward (backpropagation through time derived by hand, ``LSTMLayerFunction.backward``):
- the loop carries only dh and dc: four element-wise kernels and one (B, 4H) x (4H, H) product per step (the
  product also adds the output's gradient of the step before);
- after the loop, the gradients of W_ih, W_hh, the biases and the input are each one large matrix product (or
  sum) over all T*B rows, which is where a CPU's matrix-multiply throughput is reached.

The large per-call buffers (the input projection, the backward's per-step factors, the gate gradients) come from
``workspace``, a pool that keeps them between calls: fresh buffers of tens of MB cost thousands of page faults per
step on Linux. Saved buffers go back to the pool only when autograd frees them. New ones of 2 MiB and up are in
memory advised for huge pages (``huge_pages``): the loops stream through them (design note, "Memory").

Per-step views (x_proj[:, t], hiddens[t], ...) are made with the buffers, by one ``unbind`` each: at small sizes
the Python cost of slicing inside the loop is larger than the arithmetic. docs/scratch_fast.md has the measurements.

On CUDA each time loop is, from the second call of a shape on, a CUDA graph replayed on static buffers
(``loop_graphs``): eagerly the host's cost of launching a step's small kernels, not the GPU, sets the pace there.
The CUDA forward runs each step's cell as one kernel, PyTorch's fused LSTM cell (``fused_cell_forward``), and
computes the backward's factors after its loop, over all steps at once. With that kernel turned off
(``LSTM_BENCH_FUSED_CELL=0``) it runs the kernels below, in a graph with the factors also in bulk after the loop
(``forward_steps_keeping_states``, then ``factors_after_loop``): there, fewer kernels beat kernels on data in
cache. The same holds inside a caller's own capture of a whole step, where the layer's kernels are recorded into
the caller's graph. The arithmetic is the same.

Notation (nn.LSTM's gate order i, f, g, o): z = x W_ih^T + h W_hh^T + b, i = σ(z_i), f = σ(z_f), g = tanh(z_g),
o = σ(z_o), c_t = f c_{t-1} + i g, h_t = o tanh(c_t). With dh_t the total gradient reaching h_t and dc_t that
reaching c_t:  dc_t += dh_t o (1 - tanh²c_t);  dz_i = dc_t g i(1-i);  dz_f = dc_t c_{t-1} f(1-f);
dz_g = dc_t i (1-g²);  dz_o = dh_t tanh(c_t) o(1-o);  dh_{t-1} = dz W_hh;  dc_{t-1} = dc_t f.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from . import backward_factors, fused_cell_forward, fused_layer, fused_steps, loop_graphs, workspace
from .backward_factors import CELL, FORGET, IN, OUT  # nn.LSTM's gate order, kept throughout
from ..contract import LSTMParameters
from .tracing import tracing


_CONSTANTS: dict[tuple[torch.dtype, torch.device], tuple[torch.Tensor, torch.Tensor]] = {}


def _gate_constants(like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(g_doubler, minus_one) in ``like``'s dtype and device: [1, 1, 2, 1] as (4, 1, 1), and -1 as a scalar tensor.

    Weights and biases multiplied by g_doubler give the pre-activation of g as 2 z_g, and then
    g = tanh z_g = 2σ(2 z_g) - 1: one sigmoid kernel covers all four gates and a cheap affine kernel replaces a tanh,
    which costs about three sigmoids here. Only the forward uses the doubled copies; the backward uses the weights
    themselves, so its gradients are those of z_g. Made once per dtype and device (a few kernel calls fewer per
    call, which counts at the tutorial's sizes), except while tracing, where they belong in the traced graph.
    """
    key = (like.dtype, like.device)
    constants = _CONSTANTS.get(key)
    if constants is None:
        g_doubler = like.new_ones(4, 1, 1)
        g_doubler[CELL] = 2
        constants = (g_doubler, like.new_full((), -1.0))
        if not tracing() and not torch.is_inference_mode_enabled():  # inference tensors stay in inference mode
            _CONSTANTS[key] = constants
    return constants


class ForwardBuffers:
    """Everything the forward's time loop reads and writes, with its per-step views. Per call when the loop runs
    eagerly (the large ones from the workspace pool), or static, made once for a loop that ``loop_graphs`` captures
    and replays."""

    __slots__ = ("x_proj", "w_hh_t", "hiddens", "companion_sets", "companion_views", "gates", "minus_one",
                 "dz_factors", "dc_from_dh", "forget", "sig_grad",
                 # per-step views, made with the buffers: at small sizes slicing inside the loop costs more than the
                 # arithmetic
                 "x_proj_steps", "hidden_steps", "hidden_steps_per_gate", "gate_views", "factor_steps",
                 "cell_factor_steps", "dc_from_dh_steps", "forget_steps")

    def __init__(self, like, seq_len, batch, hidden, needs_grad, minus_one, take=workspace.take):
        self.x_proj = take((4, seq_len * batch, hidden), like)  # (4, T*B, H), z's input part, g's rows doubled
        self.w_hh_t = like.new_empty(4, hidden, hidden)  # h @ w_hh_t[k] = h W_k^T, g's rows doubled
        self.hiddens = like.new_empty(seq_len + 1, batch, hidden)  # h_0 .. h_T; h_1 .. h_T are the output
        self.gates = like.new_empty(4, batch, hidden)  # z (g's doubled), then σ of it in place: i, f, σ(2 z_g), o
        # The partners of the gates in their gradients' factors, (g, c_{t-1}, i g, tanh c_t), side by side so that
        # one kernel multiplies all four (g's own factor is then overwritten). Two sets, alternating: step t reads
        # c_{t-1} from set t % 2 and writes c_t straight into the other set, so no copy carries the cell state over.
        self.companion_sets = like.new_empty(2, 4, batch, hidden).unbind(0)
        self.companion_views = [companions.unbind(0) for companions in self.companion_sets]  # [set][gate]
        self.minus_one = minus_one
        self.dz_factors = self.dc_from_dh = self.forget = self.sig_grad = None
        if needs_grad:
            # What the backward needs, computed inside the loop while each step's values are in cache (the same
            # kernels over all steps after the loop cost the tutorial's sizes more than they saved at large ones:
            # design note, "The forward").
            self.dz_factors = take((seq_len, 4, batch, hidden), like)  # dz = [dc, dc, dc, dh] * dz_factors
            self.dc_from_dh = take((seq_len, batch, hidden), like)  # o (1 - tanh²c)
            self.forget = take((seq_len, batch, hidden), like)  # f, for dc_{t-1} = dc_t f_t
            self.sig_grad = like.new_empty(4, batch, hidden)  # σ'(z) = σ (1 - σ) for i, f, o (and g's, unused)
        self.x_proj_steps = self.x_proj.view(4, seq_len, batch, hidden).unbind(1)  # T views (4, B, H)
        self.hidden_steps = self.hiddens.unbind(0)  # T + 1 views (B, H)
        self.hidden_steps_per_gate = self.hiddens.unsqueeze(1).expand(seq_len + 1, 4, batch, hidden).unbind(0)
        self.gate_views = self.gates.unbind(0)  # i, f, σ(2 z_g), o
        self.factor_steps = self.cell_factor_steps = self.dc_from_dh_steps = self.forget_steps = None
        if needs_grad:
            self.factor_steps, self.cell_factor_steps = self.dz_factors.unbind(0), self.dz_factors[:, CELL].unbind(0)
            self.dc_from_dh_steps, self.forget_steps = self.dc_from_dh.unbind(0), self.forget.unbind(0)

    @classmethod
    def static(cls, like, seq_len, batch, hidden):
        """Buffers of a replayed loop without a backward (with one: ``GraphForwardBuffers``), made once, with a -1 of
        their own: a captured graph must not read ``_gate_constants``' tensor, which inference mode does not keep.
        (The warm-up run before the capture computes on whatever they hold; every call writes its inputs first.)"""
        return cls(like, seq_len, batch, hidden, False, like.new_full((), -1.0),
                   take=lambda shape, like: like.new_empty(shape))

    def first_cell(self):
        return self.companion_views[0][FORGET]

    def final_cell(self):
        return self.companion_views[(self.hiddens.shape[0] - 1) % 2][FORGET]

    def saved_factors(self):
        return self.dz_factors, self.dc_from_dh, self.forget


def forward_steps(buffers: ForwardBuffers) -> None:
    """The forward's time loop over ``buffers``, whose ``x_proj``, ``w_hh_t``, ``hiddens[0]`` and ``first_cell()``
    hold the step's inputs: one product and six element-wise kernels per step, five more when a backward follows."""
    seq_len = buffers.hiddens.shape[0] - 1
    needs_grad = buffers.dz_factors is not None
    minus_one, w_hh_t, gates, sig_grad = buffers.minus_one, buffers.w_hh_t, buffers.gates, buffers.sig_grad
    x_proj_steps, hidden_steps = buffers.x_proj_steps, buffers.hidden_steps
    hidden_steps_per_gate = buffers.hidden_steps_per_gate
    in_gate, forget_gate, cell_gate_sigmoid, out_gate = buffers.gate_views
    companion_sets, companion_views = buffers.companion_sets, buffers.companion_views
    factor_steps, cell_factor_steps = buffers.factor_steps, buffers.cell_factor_steps
    dc_from_dh_steps, forget_steps = buffers.dc_from_dh_steps, buffers.forget_steps
    for t in range(seq_len):
        companions = companion_sets[t % 2]
        cell_gate, cell, in_times_cell, tanh_cell = companion_views[t % 2]
        next_cell = companion_views[(t + 1) % 2][FORGET]
        torch.baddbmm(x_proj_steps[t], hidden_steps_per_gate[t], w_hh_t, out=gates)  # z
        gates.sigmoid_()  # i, f, σ(2 z_g), o
        torch.add(minus_one, cell_gate_sigmoid, alpha=2, out=cell_gate)  # g = tanh z_g = 2σ(2 z_g) - 1
        torch.mul(in_gate, cell_gate, out=in_times_cell)
        torch.addcmul(in_times_cell, forget_gate, cell, out=next_cell)  # c_t = f c_{t-1} + i g
        torch.tanh(next_cell, out=tanh_cell)
        torch.mul(out_gate, tanh_cell, out=hidden_steps[t + 1])  # h_t = o tanh(c_t)
        if needs_grad:
            torch.addcmul(gates, gates, gates, value=-1, out=sig_grad)
            # i(1-i) g, f(1-f) c_{t-1}, (overwritten next), o(1-o) tanh c
            torch.mul(sig_grad, companions, out=factor_steps[t])
            torch.addcmul(in_gate, in_times_cell, cell_gate, value=-1, out=cell_factor_steps[t])  # i (1 - g²)
            torch.addcmul(out_gate, hidden_steps[t + 1], tanh_cell, value=-1,
                          out=dc_from_dh_steps[t])  # o (1 - tanh²c)
            forget_steps[t].copy_(forget_gate)


class GraphForwardBuffers:
    """Buffers of a forward that a backward will follow, for a loop in a CUDA graph (static, for a loop replayed here,
    or per call, inside a caller's own capture): every step's gates, cell state and tanh of it are kept, and the
    backward's factors are computed from them after the loop (``factors_after_loop``), straight into the call's own
    buffers, so that no static copy of them is kept.

    Why not per step, as ``forward_steps`` does: in a graph a kernel costs the GPU's few microseconds and no Python,
    so five per-step kernels (500 at T = 100) cost more than seven over all steps. Eagerly on CPU the balance is the
    other way at the tutorial's sizes (design note, "The forward"). The arithmetic is the same."""

    __slots__ = ("x_proj", "w_hh_t", "hiddens", "minus_one", "step_gates", "cells", "tanh_cells", "in_times_cell")

    def __init__(self, like, seq_len, batch, hidden, zeroed=True):
        # Static buffers start zeroed, so that the warm-up run before a capture computes on numbers; every buffer is
        # written before it is read, so per call they need not be.
        new = like.new_zeros if zeroed else like.new_empty
        self.x_proj = new(4, seq_len * batch, hidden)
        self.w_hh_t = new(4, hidden, hidden)
        self.hiddens = new(seq_len + 1, batch, hidden)  # h_0 .. h_T
        self.minus_one = like.new_full((), -1.0)
        self.step_gates = new(seq_len, 4, batch, hidden)  # i, f, g, o of every step (g itself, not σ)
        self.cells = new(seq_len + 1, batch, hidden)  # c_0 .. c_T
        self.tanh_cells = new(seq_len, batch, hidden)  # tanh c_1 .. tanh c_T
        self.in_times_cell = new(seq_len, batch, hidden)  # i g

    def first_cell(self):
        return self.cells[0]

    def final_cell(self):
        return self.cells[-1]


def forward_steps_keeping_states(buffers: GraphForwardBuffers) -> None:
    """The forward's time loop with seven kernels per step, keeping every step's gates and states for
    ``factors_after_loop``."""
    seq_len, batch, hidden = buffers.hiddens.shape[0] - 1, buffers.hiddens.shape[1], buffers.hiddens.shape[2]
    x_proj_steps = buffers.x_proj.view(4, seq_len, batch, hidden).unbind(1)
    hidden_steps_per_gate = buffers.hiddens.unsqueeze(1).expand(seq_len + 1, 4, batch, hidden).unbind(0)
    gates = buffers.step_gates
    for t in range(seq_len):
        in_gate, forget_gate, cell_gate, out_gate = gates[t].unbind(0)
        torch.baddbmm(x_proj_steps[t], hidden_steps_per_gate[t], buffers.w_hh_t, out=gates[t])  # z
        gates[t].sigmoid_()  # i, f, σ(2 z_g), o
        torch.add(buffers.minus_one, cell_gate, alpha=2, out=cell_gate)  # g = 2σ(2 z_g) - 1, in place
        torch.mul(in_gate, cell_gate, out=buffers.in_times_cell[t])
        torch.addcmul(buffers.in_times_cell[t], forget_gate, buffers.cells[t], out=buffers.cells[t + 1])
        torch.tanh(buffers.cells[t + 1], out=buffers.tanh_cells[t])
        torch.mul(out_gate, buffers.tanh_cells[t], out=buffers.hiddens[t + 1])


def factors_after_loop(buffers: GraphForwardBuffers, like: torch.Tensor):
    """What the backward needs, from the states ``forward_steps_keeping_states`` kept (``backward_factors``): the
    same values as ``forward_steps`` computes step by step, into new buffers of the call's own. After a replay these
    are launched outside the graph, while the caller still holds the loop: a static copy of them would only be copied
    out again."""
    return backward_factors.from_states(buffers.step_gates, buffers.cells, buffers.hiddens, buffers.tanh_cells,
                                        buffers.in_times_cell, like)


def layer_forward(x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, needs_grad: bool):
    """One layer's forward on the plain loops: x (T, B, I), h0/c0 (B, H), biases (4H,) or None -> output (T, B, H),
    h_n (B, H), c_n (B, H), and what the backward needs (None unless ``needs_grad``)."""
    if fused_cell_forward.used_for(x):  # CUDA: each step's cell in one kernel of PyTorch's own
        return fused_cell_forward.layer_forward(x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, needs_grad)
    seq_len, batch, input_size = x.shape
    hidden = h0.shape[1]
    g_doubler, minus_one = _gate_constants(x)
    # On CUDA, after the first call of a shape, the loop is a captured graph on static buffers (loop_graphs).
    static = None
    if loop_graphs.may_replay(x):
        if needs_grad:
            allocate, run = (lambda: GraphForwardBuffers(x, seq_len, batch, hidden)), forward_steps_keeping_states
        else:
            allocate, run = (lambda: ForwardBuffers.static(x, seq_len, batch, hidden)), forward_steps
        static = loop_graphs.loop_for("forward", x, (seq_len, batch, hidden, needs_grad), allocate, run)
    if static is None:
        if needs_grad and loop_graphs.recording(x):
            # A caller is capturing its own graph of the step: these kernels are recorded, not launched one by one,
            # so the forward takes the graph's variant, the backward's factors in bulk after the loop.
            buffers = GraphForwardBuffers(x, seq_len, batch, hidden, zeroed=False)
            _write_forward_inputs(buffers, x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, g_doubler)
            forward_steps_keeping_states(buffers)
            hiddens, factors = buffers.hiddens, factors_after_loop(buffers, x)
        else:
            buffers = ForwardBuffers(x, seq_len, batch, hidden, needs_grad, minus_one)
            _write_forward_inputs(buffers, x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, g_doubler)
            forward_steps(buffers)
            workspace.give_back(buffers.x_proj)
            hiddens, factors = buffers.hiddens, buffers.saved_factors()
        final_cell = buffers.final_cell().clone()
    else:
        # The static buffers serve every call of this shape: one call at a time writes its inputs, replays, copies
        # out what it returns and launches what it saves (threads may share a stream).
        with static as buffers:
            _write_forward_inputs(buffers, x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, g_doubler)
            static.replay()
            hiddens, final_cell = buffers.hiddens.clone(), buffers.final_cell().clone()
            factors = factors_after_loop(buffers, x) if needs_grad else None
    saved = (x, weight_ih, weight_hh, hiddens, *factors) if needs_grad else None
    return hiddens[1:], hiddens[seq_len].clone(), final_cell, saved  # (T, B, H), (B, H), (B, H)


def _write_forward_inputs(buffers, x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, g_doubler) -> None:
    """What the forward's loop reads: the input projection of all steps (one product), the recurrent weights, h0
    and c0, written into ``buffers`` (ForwardBuffers or GraphForwardBuffers)."""
    seq_len, batch, input_size = x.shape
    hidden = h0.shape[1]
    x_rows = x.reshape(seq_len * batch, input_size).expand(4, seq_len * batch, input_size)
    w_ih_t = (weight_ih.view(4, hidden, input_size) * g_doubler).transpose(1, 2)  # (4, I, H), g's rows doubled
    if bias_ih is None:
        torch.bmm(x_rows, w_ih_t, out=buffers.x_proj)
    else:
        # nn.LSTM's two biases only ever appear as their sum; summed here, outside autograd, the sum is a fresh
        # tensor whose g rows can be doubled in place, and the graph has no extra node for it.
        bias = torch.add(bias_ih, bias_hh).view(4, 1, hidden).mul_(g_doubler)  # (4, 1, H)
        torch.baddbmm(bias, x_rows, w_ih_t, out=buffers.x_proj)
    # Written contiguous: the step's product runs faster on a contiguous right operand than on a transposed view
    # (design note, "The backward").
    torch.mul(weight_hh.view(4, hidden, hidden).transpose(1, 2), g_doubler, out=buffers.w_hh_t)
    buffers.hiddens[0] = h0
    buffers.first_cell().copy_(c0)


def _last_step_gradients(grad_output, grad_h_n, grad_c_n, dc_from_dh_last, like, batch, hidden):
    """The whole gradients reaching h_T and c_T, (B, H) each, from the three outputs' gradients (any may be None):
    dh_T = grad_h_n + grad_output[T-1];  dc_T = grad_c_n + dh_T o (1 - tanh²c_T). dc_T is a new tensor that the
    loop updates in place; dh_T is only read."""
    if grad_output is None:
        dh = grad_h_n if grad_h_n is not None else like.new_zeros(batch, hidden)
    else:
        dh = grad_output[-1] if grad_h_n is None else grad_h_n + grad_output[-1]
    if grad_c_n is None:
        dc = torch.mul(dh, dc_from_dh_last)
    else:
        dc = torch.addcmul(grad_c_n, dh, dc_from_dh_last)
    return dh, dc


class BackwardBuffers:
    """Everything the backward's time loop reads and writes: the saved per-step factors, W_hh, the outputs'
    gradients, dh and dc, and the gate gradients it fills. Per call when the loop runs eagerly, or static (zeroed,
    made once) for a loop that ``loop_graphs`` captures and replays."""

    __slots__ = ("dz_factors", "dc_from_dh", "forget", "weight_hh", "grad_output", "grad_gates", "dh", "dc",
                 "dh_before",
                 # per-step views of the buffers above that every call of a shape shares (``make_step_views``)
                 "grad_dc_gate_steps", "grad_out_gate_steps", "grad_step_rows", "dc_factor_steps",
                 "out_factor_steps", "dc_from_dh_steps", "forget_steps")

    def __init__(self):
        for name in self.__slots__:
            setattr(self, name, None)

    def make_step_views(self) -> None:
        """T views each of the gate gradients and the saved factors: once per call, or once for all calls of a
        captured loop."""
        grad_gates_major = self.grad_gates.transpose(1, 2)  # (T, 4, B, H)
        self.grad_dc_gate_steps = grad_gates_major[:, :OUT].unbind(0)  # dz_i, dz_f, dz_g
        self.grad_out_gate_steps = grad_gates_major[:, OUT].unbind(0)  # dz_o
        self.grad_step_rows = self.grad_gates.view(*self.grad_gates.shape[:2], -1).unbind(0)  # (B, 4H) each
        self.dc_factor_steps = self.dz_factors[:, :OUT].unbind(0)  # the factors of dz_i, dz_f, dz_g
        self.out_factor_steps = self.dz_factors[:, OUT].unbind(0)  # dz_o's
        self.dc_from_dh_steps, self.forget_steps = self.dc_from_dh.unbind(0), self.forget.unbind(0)

    @classmethod
    def static(cls, like, seq_len, batch, hidden, has_grad_output):
        buffers = cls()
        # One buffer for the factors copied in and the gate gradients made from them: each step's gradients overwrite
        # its own factors element for element, which nothing reads again (the factors are a gate-major view of it).
        # On the eager path the saved factors stay as they are, for a graph kept for another backward.
        buffers.grad_gates = like.new_zeros(seq_len, batch, 4, hidden)
        buffers.dz_factors = buffers.grad_gates.transpose(1, 2)  # (T, 4, B, H)
        buffers.dc_from_dh, buffers.forget = like.new_zeros(2, seq_len, batch, hidden).unbind(0)
        buffers.weight_hh = like.new_zeros(4 * hidden, hidden)
        buffers.grad_output = like.new_zeros(seq_len, batch, hidden) if has_grad_output else None
        buffers.dh, buffers.dc, buffers.dh_before = like.new_zeros(3, batch, hidden).unbind(0)
        return buffers


def backward_steps(buffers: BackwardBuffers) -> None:
    """The backward's time loop: from dh and dc, the whole gradients reaching h_T and c_T, fill ``grad_gates`` with
    every step's dz, and leave dh_0 in ``dh_before`` and dc_0 in ``dc``. One product and four element-wise kernels
    per step."""
    seq_len = buffers.grad_gates.shape[0]
    weight_hh, dc, dh_before = buffers.weight_hh, buffers.dc, buffers.dh_before
    if buffers.grad_step_rows is None:
        buffers.make_step_views()
    grad_dc_gate_steps, grad_out_gate_steps = buffers.grad_dc_gate_steps, buffers.grad_out_gate_steps
    grad_step_rows, dc_factor_steps, out_factor_steps = (buffers.grad_step_rows, buffers.dc_factor_steps,
                                                         buffers.out_factor_steps)
    dc_from_dh_steps, forget_steps = buffers.dc_from_dh_steps, buffers.forget_steps
    output_grad_steps = buffers.grad_output.unbind(0) if buffers.grad_output is not None else None
    dh = buffers.dh
    for t in range(seq_len - 1, -1, -1):
        # Here dh and dc are the whole gradients reaching h_t and c_t.
        torch.mul(dc_factor_steps[t], dc, out=grad_dc_gate_steps[t])  # dz_i, dz_f, dz_g   (3, B, H)
        torch.mul(out_factor_steps[t], dh, out=grad_out_gate_steps[t])  # dz_o
        if t > 0 and output_grad_steps is not None:
            # dh_{t-1} = dz W_hh + the output's own gradient at t-1, added by the product (one kernel fewer)
            torch.addmm(output_grad_steps[t - 1], grad_step_rows[t], weight_hh, out=dh_before)
        else:
            torch.mm(grad_step_rows[t], weight_hh, out=dh_before)  # dh_{t-1} = dz W_hh   (B, H)
        dh = dh_before
        dc.mul_(forget_steps[t])  # dc_{t-1} = dc_t f_t ...
        if t > 0:
            dc.addcmul_(dh, dc_from_dh_steps[t - 1])  # ... + the path through h_{t-1} = o tanh(c_{t-1})


def run_forward(x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, needs_grad: bool):
    """(output, h_n, c_n, saved, fused): one layer's forward on the compiled loops where they run (``fused``),
    on the plain ones otherwise; ``saved`` is what the matching backward needs (None unless ``needs_grad``)."""
    if fused_steps.used_for(x):
        return (*fused_layer.layer_forward(x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, needs_grad), True)
    return (*layer_forward(x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh, needs_grad), False)


class LSTMLayerFunction(torch.autograd.Function):
    """One LSTM layer over a whole sequence, with a hand-written backward."""

    @staticmethod
    def forward(ctx, x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh):
        """x (T, B, I), h0/c0 (B, H), biases (4H,) or None -> output (T, B, H), h_n (B, H), c_n (B, H)."""
        output, h_n, c_n, saved, ctx.fused = run_forward(x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh,
                                                         any(ctx.needs_input_grad))
        ctx.set_materialize_grads(False)  # unused outputs send None, not tensors of zeros that the loop would add
        if saved is not None:
            ctx.save_for_backward(*saved)
            for pooled in saved[4:]:  # the per-step tensors only the backward reads
                workspace.give_back_when_freed(pooled)
        ctx.has_bias = bias_ih is not None
        return output, h_n, c_n

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output, grad_h_n, grad_c_n):
        if ctx.fused:
            saved = ctx.saved_tensors
            x, weight_ih, hiddens = saved[0], saved[1], saved[3]
            grad_gates, dh, dc = fused_layer.layer_backward(saved, grad_output, grad_h_n, grad_c_n)
            gradients = _gradients_after_loop(ctx, grad_gates, x, weight_ih, hiddens)
            workspace.give_back(grad_gates)
        else:
            gradients, dh, dc = _plain_backward(ctx, grad_output, grad_h_n, grad_c_n)
        grad_x, grad_weight_ih, grad_weight_hh, grad_bias_ih, grad_bias_hh = gradients
        return grad_x, dh, dc, grad_weight_ih, grad_weight_hh, grad_bias_ih, grad_bias_hh


def _plain_backward(ctx, grad_output, grad_h_n, grad_c_n):
    """The backward of ``layer_forward``: (the gradients of ``_gradients_after_loop``, dh_0, dc_0)."""
    x, weight_ih, weight_hh, hiddens, dz_factors, dc_from_dh, forget = ctx.saved_tensors
    seq_len, batch, input_size = x.shape
    hidden = weight_hh.shape[1]
    dh, dc = _last_step_gradients(grad_output, grad_h_n, grad_c_n, dc_from_dh[-1], x, batch, hidden)
    # On CUDA, after the first call of a shape, the loop is a captured graph on static buffers (loop_graphs).
    static = loop_graphs.loop_for(
        "backward", x, (seq_len, batch, hidden, grad_output is not None),
        lambda: BackwardBuffers.static(x, seq_len, batch, hidden, grad_output is not None), backward_steps,
    ) if loop_graphs.may_replay(x) else None
    if static is None:
        buffers = BackwardBuffers()
        buffers.dz_factors, buffers.dc_from_dh, buffers.forget = dz_factors, dc_from_dh, forget
        # dz of every step, filled backwards, gate-minor (T, B, 4, H) so that one step's dz is a (B, 4H) matrix
        # and dh_{t-1} = dz W_hh is a single call (four gates' products in one bmm ran faster alone, but the
        # additions they need cost the tutorial's sizes more: design note, "The backward").
        buffers.grad_gates = workspace.take((seq_len, batch, 4, hidden), x)  # given back at the end
        gradients, dh, dc = _backward_eagerly(ctx, buffers, x, weight_ih, weight_hh, hiddens, grad_output, dh, dc)
        workspace.give_back(buffers.grad_gates)
        return gradients, dh, dc
    # One call at a time: copy in, replay, and launch everything that reads the static buffers.
    with static as buffers:
        buffers.dz_factors.copy_(dz_factors)
        buffers.dc_from_dh.copy_(dc_from_dh)
        buffers.forget.copy_(forget)
        buffers.weight_hh.copy_(weight_hh)
        if grad_output is not None:
            buffers.grad_output.copy_(grad_output)
        buffers.dh.copy_(dh)
        buffers.dc.copy_(dc)
        static.replay()
        dh, dc = buffers.dh_before.clone(), buffers.dc.clone()
        return _gradients_after_loop(ctx, buffers.grad_gates, x, weight_ih, hiddens), dh, dc


def _backward_eagerly(ctx, buffers, x, weight_ih, weight_hh, hiddens, grad_output, dh, dc):
    """The backward's loop on ``buffers`` (saved factors and gate gradients set), then the products after it:
    (the gradients of ``_gradients_after_loop``, dh_0, dc_0)."""
    buffers.weight_hh, buffers.grad_output, buffers.dh, buffers.dc = weight_hh, grad_output, dh, dc
    buffers.dh_before = x.new_empty(dh.shape)  # dh_{t-1}, written by the step's product
    backward_steps(buffers)
    gradients = _gradients_after_loop(ctx, buffers.grad_gates, x, weight_ih, hiddens)
    return gradients, buffers.dh_before, buffers.dc


def _gradients_after_loop(ctx, grad_gates, x, weight_ih, hiddens):
    """From every step's dz (T, B, 4, H): the gradients of the input, W_ih, W_hh and the biases, each one large
    matrix product (or sum) over all T*B rows, already in nn.LSTM's layout; None where autograd needs none."""
    seq_len, batch, _, hidden = grad_gates.shape
    input_size = x.shape[2]
    grad_rows = grad_gates.view(seq_len * batch, 4 * hidden)  # (T*B, 4H)
    grad_x = grad_weight_ih = grad_weight_hh = grad_bias_ih = grad_bias_hh = None
    if ctx.needs_input_grad[0]:
        grad_x = torch.mm(grad_rows, weight_ih).view(seq_len, batch, input_size)
    if ctx.needs_input_grad[3]:
        grad_weight_ih = torch.mm(grad_rows.t(), x.reshape(seq_len * batch, input_size))  # (4H, I)
    if ctx.needs_input_grad[4]:
        grad_weight_hh = torch.mm(grad_rows.t(), hiddens[:-1].reshape(seq_len * batch, hidden))  # (4H, H)
    if ctx.has_bias and (ctx.needs_input_grad[5] or ctx.needs_input_grad[6]):
        grad_bias_ih = grad_rows.sum(0)  # (4H,): the gradient of the biases' sum, so of each bias
        # Each parameter gets its own tensor: autograd may keep a returned gradient as the .grad itself.
        grad_bias_hh = grad_bias_ih.clone() if ctx.needs_input_grad[5] and ctx.needs_input_grad[6] else grad_bias_ih
    return grad_x, grad_weight_ih, grad_weight_hh, grad_bias_ih, grad_bias_hh


def needs_autograd(tensors) -> bool:
    """Whether the layer must record a graph: grad mode on, a tensor requiring grad, and not being exported
    (``torch.export`` then traces the plain tensor operations, which export faster and without a custom op)."""
    if not torch.is_grad_enabled() or torch.compiler.is_exporting():
        return False
    return any(t is not None and t.requires_grad for t in tensors)


class ScratchFastLSTM(LSTMParameters):
    """nn.LSTM's contract and weights; each layer runs as one ``LSTMLayerFunction``."""

    implementation_name = "scratch_fast"

    def _run_layer(self, x, h0, c0, weights):
        args = (x.contiguous(), h0, c0, *weights)
        if needs_autograd(args):
            return LSTMLayerFunction.apply(*args)  # (T, B, H), (B, H), (B, H)
        with torch.no_grad():  # inference and export: the same arithmetic without autograd's bookkeeping
            output, h_n, c_n, _, _ = run_forward(*args, needs_grad=False)  # the out= kernels refuse autograd
        return output, h_n, c_n
