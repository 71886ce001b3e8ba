"""scratch_fast's time loops replayed on static buffers (``lstm_models.core.scratch_fast.loop_graphs``) give what the
eager loops give, call after call.

On CUDA the replay is a captured CUDA graph. On CPU, where there are no graphs, the ``replaying`` fixture lets
``may_replay`` say yes there too, and a loop is re-run on its static buffers instead: that checks everything around
the graph (the copies in and out, the sharing of one loop by several calls and layers, the bounds) on any machine.
"""

import copy
import sys
import threading

import pytest
import torch

from benchmarks.cuda_graph_step import warm_up_on_side_stream
from lstm_models import build_lstm
from lstm_models.core.scratch_fast import fused_steps, loop_graphs
from lstm_models.core.factory import lstm_inputs
from lstm_models.core.parity import PARITY_CASES, ParityCase, build_like_native, run_case
from tests.helpers import (DEVICES, FLOAT64_TOLERANCE, TWO_LAYERS, assert_same_results, float64_sequence,
                           float64_tolerance, fresh_run, gradcheck_scratch_fast, native_and_scratch_fast, needs_cuda,
                           printed_by_fresh_process)


@pytest.fixture
def replaying(monkeypatch):
    """Replaying on, on CPU too, from an empty cache, with the plain loops (the ones CUDA runs) instead of the
    compiled CPU ones; everything as before afterwards."""
    monkeypatch.setattr(loop_graphs, "may_replay", lambda like: loop_graphs.enabled())
    was_enabled = loop_graphs.enabled()
    loop_graphs.set_enabled(True)
    loop_graphs.clear()
    fused_steps.set_enabled(False)
    yield
    fused_steps.set_enabled(True)
    loop_graphs.set_enabled(was_enabled)
    loop_graphs.clear()


def _parameter_grads(module) -> dict:
    return {name: param.grad for name, param in module.named_parameters()}


def _assert_same_parameter_grads(native, fast, device: str) -> None:
    for key, want in _parameter_grads(native).items():
        torch.testing.assert_close(_parameter_grads(fast)[key], want, **float64_tolerance(device), msg=key)


# Two layers of equal sizes share one captured loop per pass; unbatched input and the tutorial's sizes too.
REPLAY_CASES = [case for case in PARITY_CASES if case.name in ("initial_state", "unbatched", "toy", "no_bias")]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", REPLAY_CASES, ids=lambda case: case.name)
def test_replayed_steps_match_native_call_after_call(replaying, case, device):
    native, fast = native_and_scratch_fast(case, device)
    for seed in range(4):  # calls 1 eager, 2 capture and replay, 3 and 4 replay; new inputs every time
        assert_same_results(fresh_run(fast, case, device, seed), fresh_run(native, case, device, seed), case,
                            float64_tolerance(device), device)
    assert loop_graphs.captured_count() == 2  # one forward and one backward loop, shared by the layers


@pytest.mark.parametrize("device", DEVICES)
def test_two_forwards_before_one_backward(replaying, device):
    # Gradient accumulation over two batches in one graph: the second forward replays the same static buffers
    # before the first call's backward runs, so each call must have copied out what its backward needs.
    native, fast = native_and_scratch_fast(TWO_LAYERS, device)
    generator = torch.Generator().manual_seed(3)
    inputs = [float64_sequence(TWO_LAYERS, device, generator) for _ in range(2)]
    for module in (native, fast):
        for _ in range(2):  # a first, eager call, so that the calls below replay
            module(inputs[0])[0].sum().backward()
        module.zero_grad(set_to_none=True)
        sum((module(x)[0] * (i + 1)).sum() for i, x in enumerate(inputs)).backward()
    assert loop_graphs.captured_count() == 2
    _assert_same_parameter_grads(native, fast, device)


@pytest.mark.parametrize("device", DEVICES)
def test_only_outputs_used_in_part_replay_correctly(replaying, device):
    # Without a gradient for the output sequence the backward loop is another variant, captured on its own.
    native, fast = native_and_scratch_fast(TWO_LAYERS, device)
    x = float64_sequence(TWO_LAYERS, device)
    for module in (native, fast):
        for _ in range(3):
            module.zero_grad(set_to_none=True)
            _, (h_n, c_n) = module(x)
            (h_n.sum() + 2 * c_n.sum()).backward()
    _assert_same_parameter_grads(native, fast, device)


@pytest.mark.parametrize("device", DEVICES)
def test_inference_then_no_grad_calls_share_a_loop(replaying, device):
    # A loop first captured under inference mode (Lightning's validation) serves later calls outside it: its
    # buffers must be ordinary tensors, which inference tensors are not.
    native, fast = native_and_scratch_fast(TWO_LAYERS, device)
    x = float64_sequence(TWO_LAYERS, device)
    with torch.inference_mode():
        for _ in range(2):
            fast(x)
    assert loop_graphs.captured_count() == 1
    with torch.no_grad():
        got, want = fast(x)[0], native(x)[0]
    torch.testing.assert_close(got, want, **float64_tolerance(device))


def test_loops_kept_are_bounded_and_counted_only_after_a_repeat(replaying, monkeypatch):
    monkeypatch.setattr(loop_graphs, "MAX_LOOPS", 2)
    native = build_lstm("native", input_size=2, hidden_size=3, dtype=torch.float64)
    fast = build_like_native(native, "scratch_fast", input_size=2, hidden_size=3)
    with torch.no_grad():
        for seq_len in (3, 4, 5):  # every length once: nothing captured
            fast(torch.randn(seq_len, 2, 2, dtype=torch.float64))
        assert loop_graphs.captured_count() == 0
        for seq_len in (3, 4, 5, 3):  # repeats capture; the bound drops the least recently used
            x = torch.randn(seq_len, 2, 2, dtype=torch.float64)
            torch.testing.assert_close(fast(x)[0], native(x)[0], **FLOAT64_TOLERANCE)
            assert loop_graphs.captured_count() <= 2
    assert loop_graphs.captured_count() == 2


def test_turned_off_nothing_is_captured(replaying):
    loop_graphs.set_enabled(False)
    fast = build_lstm("scratch_fast", input_size=2, hidden_size=3)
    for _ in range(3):
        fast(torch.randn(4, 2, 2))[0].sum().backward()
    assert loop_graphs.captured_count() == 0


@pytest.mark.slow  # starts fresh interpreters
def test_environment_variable_turns_it_off():
    for value, expected in (("0", "False"), ("1", "True")):
        assert printed_by_fresh_process("loop_graphs", "enabled", LSTM_BENCH_CUDA_GRAPHS=value) == expected


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", ["two_layers_initial_state", "three_layers_no_bias", "unbatched"])
def test_gradcheck_with_replaying(replaying, case, device):
    # gradcheck calls the module many times with one shape: nearly every call replays.
    gradcheck_scratch_fast(case, device)
    assert loop_graphs.captured_count() >= 2


def test_inside_a_callers_capture_the_forward_takes_the_graph_variant(monkeypatch):
    # Inside a caller's own CUDA-graph capture, the forward computes the backward's factors in bulk after its loop,
    # on buffers of the call's own. On CPU, with the capture check made to answer yes, the same path runs eagerly:
    # its results must be nn.LSTM's, call after call, and gradcheck must pass through it.
    monkeypatch.setattr(loop_graphs, "recording", lambda like: True)
    case = TWO_LAYERS
    native, fast = native_and_scratch_fast(case, "cpu")
    for seed in range(3):
        assert_same_results(fresh_run(fast, case, "cpu", seed), fresh_run(native, case, "cpu", seed), case,
                            FLOAT64_TOLERANCE, "cpu")
    gradcheck_scratch_fast("two_layers_initial_state", "cpu")
    assert loop_graphs.captured_count() == 0


@needs_cuda
def test_a_whole_step_captured_by_its_caller_matches_native(replaying):
    # A caller captures its whole training step in one CUDA graph (torch.cuda.graph): the layer replays nothing of
    # its own inside it, and its kernels are recorded into the caller's graph. Replayed with new inputs copied into
    # the captured ones, the step must give nn.LSTM's output and gradients, in float64.
    case = TWO_LAYERS
    native, fast = native_and_scratch_fast(case, "cuda")

    def step_inputs(seed: int) -> list[torch.Tensor]:
        x, (h0, c0) = lstm_inputs(case.seq_len, case.batch, case.input_size, case.hidden_size, case.num_layers,
                                  seed=seed, dtype=torch.float64, device="cuda")
        upstream = torch.randn(case.seq_len, case.batch, case.hidden_size, dtype=torch.float64,
                               generator=torch.Generator().manual_seed(seed + 1)).to("cuda")  # d loss / d output
        return [x, h0, c0, upstream]

    def training_step(module, x, h0, c0, upstream) -> list[torch.Tensor]:
        """Output and every gradient; gradients cleared first, so that a capture allocates them in its own pool
        and each replay writes them afresh."""
        for leaf in (x, h0, c0):
            leaf.grad = None
        module.zero_grad(set_to_none=True)
        output, _ = module(x, (h0, c0))
        output.backward(upstream)
        return [output.detach(), x.grad, h0.grad, c0.grad] + [param.grad for param in module.parameters()]

    captured_inputs = step_inputs(0)
    for leaf in captured_inputs[:3]:
        leaf.requires_grad_()
    warm_up_on_side_stream(lambda: training_step(fast, *captured_inputs))
    loops_before = loop_graphs.captured_count()  # the warm-up's calls captured the layer's own loops, on `side`
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured_results = training_step(fast, *captured_inputs)  # tensors that every replay writes
    assert loop_graphs.captured_count() == loops_before  # nothing of the layer's own captured inside the capture
    for seed in (1, 2):
        with torch.no_grad():
            for captured, new in zip(captured_inputs, step_inputs(seed)):
                captured.copy_(new)
        graph.replay()
        torch.cuda.synchronize()
        native_inputs = [t.detach().clone().requires_grad_(i < 3) for i, t in enumerate(captured_inputs)]
        want = training_step(native, *native_inputs)
        for index, (got_tensor, want_tensor) in enumerate(zip(captured_results, want)):
            torch.testing.assert_close(got_tensor, want_tensor, **CUDA_FLOAT64_TOLERANCE,
                                       msg=lambda text: f"seed {seed}, result {index}: {text}")


def test_threads_sharing_a_loop_get_their_own_results(replaying):
    # Two threads on one device and stream share each captured loop; each call must see only its own inputs.
    # A tiny switch interval makes the interpreter change threads between almost any two operations.
    case = TWO_LAYERS
    native, fast = native_and_scratch_fast(case, "cpu")
    seeds = {0: range(0, 12), 1: range(100, 112)}
    expected = {seed: fresh_run(native, case, "cpu", seed) for part in seeds.values() for seed in part}
    fresh_run(fast, case, "cpu", 0)  # the first call of the shape, eager: the threads' calls replay
    failures = []
    # A module of each thread's own, made here: building one draws its initial weights from the global random
    # generator, which two threads building at once would share.
    copies = [copy.deepcopy(fast) for _ in seeds]

    def work(thread: int) -> None:
        try:
            for seed in seeds[thread]:
                assert_same_results(fresh_run(copies[thread], case, "cpu", seed), expected[seed], case,
                                    FLOAT64_TOLERANCE, "cpu")
        except AssertionError as error:
            failures.append(f"thread {thread}: {error}")

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=work, args=(thread,)) for thread in seeds]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert not failures, failures[0]
    assert loop_graphs.captured_count() == 2
