"""scratch_fast's buffer pool (lstm_models/core/scratch_fast/workspace.py): reuse must never let two users share memory.

The dangerous cases are the ones where a saved buffer would be reused while a graph still needs it: two forward
graphs alive at once, and a graph kept with ``retain_graph=True`` while another forward runs. Each is compared
with nn.LSTM's gradients in float64, with the workspace pooling every buffer, on both of scratch_fast's CPU paths
(the compiled loops and the plain ones: the ``cpu_loops`` fixture).
"""

import threading

import pytest
import torch

from lstm_models import build_lstm
from lstm_models.core.scratch_fast import workspace
from tests.helpers import small_pair, small_sequences

pytestmark = pytest.mark.usefixtures("cpu_loops")


@pytest.fixture(autouse=True)
def empty_pool(monkeypatch):
    monkeypatch.setattr(workspace, "MIN_POOLED_BYTES", 0)  # pool even the small buffers of these cases
    workspace.clear()
    yield
    workspace.clear()


def _weight_grads(module) -> dict[str, torch.Tensor]:
    return {name: param.grad.clone() for name, param in module.named_parameters()}


def _assert_same_grads(fast, native):
    want = _weight_grads(native)
    for name, got in _weight_grads(fast).items():
        torch.testing.assert_close(got, want[name], msg=name)


def _two_graphs_alive_at_once(module, first, second):
    # Forward A, forward B, then one backward through both: B must not have reused A's saved factors.
    out_a, _ = module(first)
    out_b, _ = module(second)
    (out_a.square().sum() + out_b.sin().sum()).backward()


def _backwards_in_the_reverse_order_of_their_forwards(module, first, second):
    out_a, _ = module(first)
    out_b, _ = module(second)
    out_b.sum().backward()
    out_a.square().sum().backward()


def _a_retained_graph_survives_a_later_forward(module, first, second):
    # backward(retain_graph=True), then an unrelated forward and backward, then the retained graph again.
    kept, _ = module(first)
    kept.square().sum().backward(retain_graph=True)
    other, _ = module(second)
    other.sum().backward()
    kept.square().sum().backward()


@pytest.mark.parametrize("scenario", (_two_graphs_alive_at_once, _backwards_in_the_reverse_order_of_their_forwards,
                                      _a_retained_graph_survives_a_later_forward),
                         ids=lambda scenario: scenario.__name__.strip("_"))
def test_graphs_that_overlap_keep_their_own_saved_buffers(scenario):
    native, fast = small_pair()
    first, second = small_sequences(2)
    for module in (native, fast):
        scenario(module, first, second)
    _assert_same_grads(fast, native)


def test_saved_buffers_return_to_the_pool_only_when_the_graph_is_freed():
    _, fast = small_pair()
    (x,) = small_sequences(1)
    output, _ = fast(x.requires_grad_())
    during_forward_graph = workspace.pooled_bytes()  # only what the forward gave back after its loops
    output.sum().backward()
    after_backward = workspace.pooled_bytes()
    assert after_backward > during_forward_graph  # the saved factors came back once backward freed the graph
    output, _ = fast(x)
    assert workspace.pooled_bytes() < after_backward  # and the next forward took them again


def test_take_reuses_a_given_back_buffer_and_never_hands_it_out_twice():
    like = torch.empty(0)
    first = workspace.take((5, 7), like)
    workspace.give_back(first)
    again = workspace.take((7, 5), like)  # same number of elements: the same memory, in the new shape
    assert again.data_ptr() == first.data_ptr() and again.shape == (7, 5)
    other = workspace.take((7, 5), like)  # the pool is empty again: fresh memory
    assert other.data_ptr() != again.data_ptr()


def test_give_back_when_freed_waits_for_the_saved_view():
    saved = workspace.take((3, 4), torch.empty(0))
    workspace.give_back_when_freed(saved)
    assert workspace.pooled_bytes() == 0
    del saved
    assert workspace.pooled_bytes() == 3 * 4 * 4


def test_the_pool_stays_bounded_over_many_sequence_lengths():
    _, fast = small_pair()
    for seq_len in range(1, 60, 3):
        output, _ = fast(torch.randn(seq_len, 2, 3, dtype=torch.float64, requires_grad=True))
        output.sum().backward()
    with workspace._lock:
        assert all(len(buffers) <= workspace.MAX_FREE_BUFFERS for buffers in workspace._free.values())


def test_a_shorter_sequence_reuses_a_longer_ones_buffer_but_not_a_far_larger_one():
    like = torch.empty(0)
    longer = workspace.take((100, 8), like)
    workspace.give_back(longer)
    shorter = workspace.take((60, 8), like)  # fits, and 800 <= 2 x 480
    assert shorter.data_ptr() == longer.data_ptr() and shorter.shape == (60, 8)
    workspace.give_back(shorter)
    assert workspace.pooled_bytes() == 100 * 8 * 4  # the whole buffer came back, not only the part in use
    far_smaller = workspace.take((30, 8), like)  # 800 > 2 x 240: fresh memory, the large buffer stays free
    assert far_smaller.data_ptr() != longer.data_ptr()
    assert workspace.pooled_bytes() == 100 * 8 * 4


def test_variable_length_training_matches_nn_lstm():
    # Batches of different lengths share pooled buffers; every step's gradients stay nn.LSTM's.
    native, fast = small_pair()
    generator = torch.Generator().manual_seed(3)
    for seq_len in (9, 6, 9, 5, 8):
        x = torch.randn(seq_len, 2, 3, generator=generator, dtype=torch.float64)
        for module in (native, fast):
            module.zero_grad()
            output, _ = module(x)
            output.square().sum().backward()
        _assert_same_grads(fast, native)


def test_small_buffers_are_not_pooled(monkeypatch):
    monkeypatch.setattr(workspace, "MIN_POOLED_BYTES", 1 << 20)
    small = workspace.take((16, 16), torch.empty(0))
    workspace.give_back(small)
    assert workspace.pooled_bytes() == 0
    large = workspace.take((512, 512), torch.empty(0))  # exactly 1 MiB of float32
    workspace.give_back(large)
    assert workspace.pooled_bytes() == 512 * 512 * 4


def test_training_after_inference_mode_does_not_reuse_inference_tensors():
    # Lightning validates under torch.inference_mode; the next training step must not get its buffers.
    native, fast = small_pair()
    first, second = small_sequences(2)
    for module in (native, fast):
        with torch.inference_mode():
            module(first)
        output, _ = module(second)
        output.sum().backward()
    _assert_same_grads(fast, native)


def test_clear_hands_every_kept_buffer_back():
    _, fast = small_pair()
    fast(small_sequences(1)[0])[0].sum().backward()  # the graph is freed: its saved buffers are back in the pool
    assert workspace.pooled_bytes() > 0
    workspace.clear()
    assert workspace.pooled_bytes() == 0


def test_what_a_call_returns_is_not_overwritten_by_the_next_call():
    native, fast = small_pair()
    first, second = small_sequences(2)
    ones = torch.ones(2, 2, 4, dtype=torch.float64)
    with torch.no_grad():
        kept = fast(first, (ones, ones))
        fast(second)  # takes the same buffers: without a backward they are back in the pool at once
        want = native(first, (ones, ones))
    torch.testing.assert_close(kept[0], want[0])
    torch.testing.assert_close(kept[1], want[1])  # (h_n, c_n)


def test_threads_training_at_once_each_get_nn_lstm_gradients():
    native, fast = small_pair()
    inputs = small_sequences(8)
    want = []
    for x in inputs:
        x = x.clone().requires_grad_()
        native(x)[0].square().sum().backward()
        want.append(x.grad)
    got = [None] * len(inputs)

    def train(index):
        for _ in range(20):  # many rounds, so that the threads' calls interleave
            x = inputs[index].clone().requires_grad_()
            fast(x)[0].square().sum().backward()
        got[index] = x.grad

    threads = [threading.Thread(target=train, args=(index,)) for index in range(len(inputs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index, (got_grad, want_grad) in enumerate(zip(got, want)):
        torch.testing.assert_close(got_grad, want_grad, msg=f"thread {index}")
