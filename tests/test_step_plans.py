"""scratch_fast's pool of small-call plans (lstm_models/core/scratch_fast/step_plans.py): reuse must never let two users share
memory, and nothing a call returns may be a plan's.

The overlapping graphs (two alive at once, a retained one) are ``test_workspace``'s, run there with plans too.
Results are compared with nn.LSTM's in float64.
"""

import gc
import threading
import weakref

import pytest
import torch

from lstm_models import build_lstm
from lstm_models.core.parity import build_like_native
from lstm_models.core.scratch_fast import step_plans, workspace
from lstm_models.core.scratch_fast.layer import SmallCallPlan
from tests.helpers import small_pair, small_sequences


@pytest.fixture(autouse=True)
def empty_pool():
    step_plans.clear()
    yield
    step_plans.clear()


def test_the_sizes_here_take_plans_and_not_the_workspace():
    # Else the tests below, and test_workspace's overlapping graphs with plans, would test nothing of the plans.
    _, fast = small_pair()
    output, _ = fast(small_sequences(1)[0].requires_grad_())
    output.sum().backward()
    assert step_plans.free_plans() == 2  # one per layer, back once the graph freed its saved tensors
    assert workspace.pooled_bytes() == 0


def test_a_plan_returns_only_when_the_graph_is_freed_and_the_next_call_takes_it():
    _, fast = small_pair()
    (x,) = small_sequences(1)
    output, _ = fast(x.requires_grad_())
    assert step_plans.free_plans() == 0  # both layers' plans are held by the graph
    output.sum().backward()
    assert step_plans.free_plans() == 2
    output, _ = fast(x)
    assert step_plans.free_plans() == 0


def test_what_a_call_returns_is_not_overwritten_by_the_next_call():
    native, fast = small_pair()
    first, second = small_sequences(2)
    with torch.no_grad():
        kept = fast(first, (torch.ones(2, 2, 4, dtype=torch.float64), torch.ones(2, 2, 4, dtype=torch.float64)))
        fast(second)  # takes the same plans: inference gives them back at once
        want = native(first, (torch.ones(2, 2, 4, dtype=torch.float64), torch.ones(2, 2, 4, dtype=torch.float64)))
    torch.testing.assert_close(kept[0], want[0])
    torch.testing.assert_close(kept[1], want[1])  # (h_n, c_n)


def test_the_initial_state_gradients_are_not_a_plans_memory():
    native, fast = small_pair()
    first, second = small_sequences(2)
    grads = {}
    for name, module in (("native", native), ("fast", fast)):
        state = [torch.zeros(2, 2, 4, dtype=torch.float64, requires_grad=True) for _ in range(2)]
        module(first, tuple(state))[0].sum().backward()
        grads[name] = [tensor.grad for tensor in state]
        module(second)[0].sum().backward()  # reuses the plans of the first call
    for got, want in zip(grads["fast"], grads["native"]):
        torch.testing.assert_close(got, want)


def test_a_plan_keeps_no_tensor_of_the_call_that_used_it():
    _, fast = small_pair()
    grad_output = torch.randn(6, 2, 4, dtype=torch.float64)
    output, _ = fast(small_sequences(1)[0])
    output.backward(grad_output)
    with step_plans._lock:
        plans = [plan for _, plan in step_plans._free]
    assert plans and all(isinstance(plan, SmallCallPlan) for plan in plans)
    for plan in plans:
        assert (plan.backward.grad_output, plan.backward.weight_hh, plan.backward.dh, plan.backward.dc,
                plan.backward.dh_before) == (None,) * 5


def test_a_graph_kept_after_its_backward_does_not_keep_its_plans():
    # Once back in the pool a plan is another call's; the old graph, still referenced, must not hold it too.
    _, fast = small_pair()
    output, _ = fast(small_sequences(1)[0].requires_grad_())
    output.sum().backward()
    with step_plans._lock:
        plans = [weakref.ref(plan) for _, plan in step_plans._free]
    step_plans.clear()
    gc.collect()
    assert output.grad_fn is not None and len(plans) == 2
    assert all(plan() is None for plan in plans)


def test_inference_mode_takes_no_plan():
    # Its tensors may not be written outside it: a plan made there would break the next training step.
    _, fast = small_pair()
    with torch.inference_mode():
        fast(small_sequences(1)[0])
    assert step_plans.free_plans() == 0


def test_the_pool_stays_bounded_over_many_sequence_lengths():
    _, fast = small_pair()
    for seq_len in range(1, 30):
        output, _ = fast(torch.randn(seq_len, 2, 3, dtype=torch.float64, requires_grad=True))
        output.sum().backward()
    assert step_plans.free_plans() == step_plans.MAX_FREE_PLANS


def test_large_calls_take_no_plan():
    # From workspace.MIN_POOLED_BYTES on, buffers are the workspace's and views are made per call.
    fast = build_lstm("scratch_fast", 8, 256)
    output, _ = fast(torch.randn(300, 1, 8))  # the input projection: 4 x 300 x 256 float32 = 1.2 MB
    output.sum().backward()
    assert step_plans.free_plans() == 0


def test_a_wide_layer_takes_no_plan_even_for_a_short_sequence():
    # Its recurrent weights' copy, (4, H, H), is a plan's largest buffer: 1 MiB of float32 at H = 256.
    fast = build_lstm("scratch_fast", 8, 256)
    output, _ = fast(torch.randn(2, 1, 8))  # the input projection: 8 KB
    output.sum().backward()
    assert step_plans.free_plans() == 0
    narrower = build_lstm("scratch_fast", 8, 255)
    narrower(torch.randn(2, 1, 8))[0].sum().backward()
    assert step_plans.free_plans() == 1


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
