"""scratch_fast's CUDA forward through PyTorch's fused LSTM cell (``lstm_models.core.scratch_fast.fused_cell_forward``)
gives nn.LSTM's results, and its backward (scratch_fast's own) nn.LSTM's gradients.

On CUDA the tests run the kernel itself. On CPU, where it does not exist, the ``fused`` fixture runs the same loop
with the cell in plain tensor operations (``tests.helpers.cell_in_plain_ops``): that checks the loop, the chunked
stacking, the layout and the backward's factors on any machine, and a CUDA test checks the emulation against the
kernel.
"""

import pytest
import torch

from lstm_models.core.scratch_fast import fused_cell_forward, fused_steps, loop_graphs
from lstm_models.core.scratch_fast.tracing import tracing
from lstm_models.core.factory import lstm_inputs
from lstm_models.core.parity import PARITY_CASES, build_like_native, compare_with_native, fits
from tests.helpers import (DEVICES, TWO_LAYERS, assert_same_results, cell_in_plain_ops, float64_sequence,
                           float64_tolerance, fresh_run, gradcheck_scratch_fast, native_and_scratch_fast, needs_cuda)


@pytest.fixture
def fused(monkeypatch):
    """The fused path on, on CPU too (the cell in plain operations); the in-layer graphs off unless a test turns
    them on; on CPU the plain loops, which CUDA runs, instead of the compiled CPU ones."""
    monkeypatch.setattr(fused_cell_forward, "_enabled", True)
    fused_steps.set_enabled(False)
    kernel = fused_cell_forward.cell_step

    def cell_step(input_gates, hidden_gates, cell):
        return (kernel if cell.is_cuda else cell_in_plain_ops)(input_gates, hidden_gates, cell)

    monkeypatch.setattr(fused_cell_forward, "cell_step", cell_step)
    monkeypatch.setattr(fused_cell_forward, "used_for", lambda like: fused_cell_forward.enabled() and not tracing())
    was_enabled = loop_graphs.enabled()
    loop_graphs.set_enabled(False)
    yield
    fused_steps.set_enabled(True)
    loop_graphs.set_enabled(was_enabled)
    loop_graphs.clear()


@pytest.fixture
def short_chunks(monkeypatch):
    """Chunks of 4 steps: the parity cases' sequences (1 to 60 steps) end in whole and in partial chunks."""
    monkeypatch.setattr(fused_cell_forward, "CHUNK", 4)


def test_not_used_on_cpu():
    assert not fused_cell_forward.used_for(torch.zeros(2, 3, 4))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", [case for case in PARITY_CASES if fits("scratch_fast", case)],
                         ids=lambda case: case.name)
def test_matches_native_in_float64(fused, short_chunks, case, device):
    got, want = compare_with_native("scratch_fast", case, dtype=torch.float64, device=device)
    assert_same_results(got, want, case, float64_tolerance(device), device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", ["two_layers_initial_state", "three_layers_no_bias", "unbatched"])
def test_gradcheck(fused, short_chunks, case, device):
    gradcheck_scratch_fast(case, device)


@pytest.mark.parametrize("device", DEVICES)
def test_replayed_call_after_call(fused, short_chunks, monkeypatch, device):
    # Calls 1 eager, 2 capture and replay, 3 and 4 replay, each with new inputs; on CPU the "replay" re-runs the loop
    # on its static buffers.
    monkeypatch.setattr(loop_graphs, "may_replay", lambda like: loop_graphs.enabled())
    loop_graphs.set_enabled(True)
    loop_graphs.clear()
    case = TWO_LAYERS
    native, fast = native_and_scratch_fast(case, device)
    for seed in range(4):
        assert_same_results(fresh_run(fast, case, device, seed), fresh_run(native, case, device, seed), case,
                            float64_tolerance(device), device)
    assert loop_graphs.captured_count() == 2  # the forward's fused loop and the backward's loop, shared by 2 layers
    with torch.no_grad():  # an inference call: its own loop, without the states a backward needs
        x = float64_sequence(case, device)
        for _ in range(3):
            _assert_same_inference(fast(x), native(x), device)
    assert loop_graphs.captured_count() == 3


def _assert_same_inference(got, want, device: str) -> None:
    """Output, h_n and c_n of an inference call."""
    (got_output, (got_h, got_c)), (want_output, (want_h, want_c)) = got, want
    for name, got_tensor, want_tensor in (("output", got_output, want_output), ("h_n", got_h, want_h),
                                          ("c_n", got_c, want_c)):
        torch.testing.assert_close(got_tensor, want_tensor, **float64_tolerance(device), msg=name)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", ["initial_state", "long_sequence", "toy"])
def test_inference_matches_native(fused, short_chunks, case, device):
    case = next(c for c in PARITY_CASES if c.name == case)
    native, fast = native_and_scratch_fast(case, device)
    x, state = lstm_inputs(case.seq_len, case.batch, case.input_size, case.hidden_size, case.num_layers, seed=0,
                           dtype=torch.float64, device=device)
    state = state if case.initial_state else None
    with torch.no_grad():
        _assert_same_inference(fast(x, state), native(x, state), device)


@pytest.mark.parametrize("device", DEVICES)
def test_turned_off_the_forward_runs_the_hand_written_kernels(fused, monkeypatch, device):
    calls = []
    monkeypatch.setattr(fused_cell_forward, "forward_steps", lambda buffers: calls.append(buffers))
    fused_cell_forward.set_enabled(False)
    case = TWO_LAYERS
    got, want = compare_with_native("scratch_fast", case, dtype=torch.float64, device=device)
    assert_same_results(got, want, case, float64_tolerance(device), device)
    assert calls == []


@pytest.mark.parametrize("device", DEVICES)
def test_an_exported_program_keeps_plain_operations(fused, monkeypatch, device):
    # torch.export traces the layer without autograd; the program it makes must run on any device, so the fused
    # kernel (CUDA's only) stays out of it, while calls outside the trace still use it.
    calls = []
    real_forward_steps = fused_cell_forward.forward_steps
    monkeypatch.setattr(fused_cell_forward, "forward_steps", lambda buffers: calls.append(real_forward_steps(buffers)))
    case = TWO_LAYERS
    native, fast = native_and_scratch_fast(case, device)
    x = float64_sequence(case, device)
    exported = torch.export.export(fast, (x,))
    assert calls == [] and "_thnn_fused_lstm_cell" not in str(exported.graph)
    with torch.no_grad():
        _assert_same_inference(exported.module()(x), native(x), device)
        fast(x)
    assert len(calls) == case.num_layers


@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_the_emulation_computes_what_the_kernel_computes(dtype):
    generator = torch.Generator().manual_seed(3)
    batch, hidden = 5, 7
    input_gates, hidden_gates = (torch.randn(batch, 4 * hidden, generator=generator, dtype=dtype).cuda()
                                 for _ in range(2))
    cell = torch.randn(batch, hidden, generator=generator, dtype=dtype).cuda()
    kernel = fused_cell_forward._FUSED_CELL.default(input_gates, hidden_gates, cell)
    emulated = cell_in_plain_ops(input_gates, hidden_gates, cell)
    for got, want in zip(emulated, kernel):
        torch.testing.assert_close(got, want)


@needs_cuda
def test_cuda_uses_the_kernel_by_default():
    assert fused_cell_forward.used_for(torch.zeros(1, device="cuda")) == fused_cell_forward.enabled()
