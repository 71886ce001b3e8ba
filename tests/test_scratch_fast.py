"""scratch_fast's hand-written backward checked against finite differences (``torch.autograd.gradcheck``).

Parity with nn.LSTM (test_parity.py) already compares every gradient with autograd's; gradcheck checks the
backward as a function in its own right: every input, initial state and weight is perturbed numerically and the
analytical Jacobian must agree with the numerical one in float64. Every test runs on both CPU paths, the compiled
loops and the plain ones (the ``cpu_loops`` fixture).
"""

import pytest
import torch

from lstm_models import build_lstm
from lstm_models.core.scratch_fast.layer import LSTMLayerFunction
from tests.helpers import DEVICES, GRADCHECK_CASES, gradcheck_scratch_fast

pytestmark = pytest.mark.usefixtures("cpu_loops")

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", GRADCHECK_CASES, ids=str)
def test_gradcheck_over_input_state_and_weights(case, device):
    gradcheck_scratch_fast(case, device)


@pytest.mark.parametrize("used", [("h_n", "c_n"), ("output",), ("h_n",), ("c_n",), ("output", "c_n")])
def test_gradcheck_layer_function_when_only_some_outputs_are_used(used):
    # Unused outputs send None to the backward (not zeros), and the loop's start depends on which arrive.
    generator = torch.Generator().manual_seed(1)
    seq_len, batch, inputs, hidden = 4, 2, 3, 2

    def draw(*shape):
        return torch.randn(*shape, generator=generator, dtype=torch.float64, requires_grad=True)

    args = (draw(seq_len, batch, inputs), draw(batch, hidden), draw(batch, hidden),
            draw(4 * hidden, inputs), draw(4 * hidden, hidden), draw(4 * hidden), draw(4 * hidden))

    def used_outputs(*args):
        outputs = dict(zip(("output", "h_n", "c_n"), LSTMLayerFunction.apply(*args)))
        return tuple(outputs[name] for name in used)

    assert torch.autograd.gradcheck(used_outputs, args, eps=1e-6, atol=1e-8, rtol=1e-6)


def test_gradcheck_detects_a_wrong_backward():
    # The check above must be able to fail: a backward that drops the path through c_{t-1} is refused.
    class BrokenForget(LSTMLayerFunction):
        @staticmethod
        def backward(ctx, grad_output, grad_h_n, grad_c_n):
            grads = list(LSTMLayerFunction.backward(ctx, grad_output, grad_h_n, grad_c_n))
            grads[2] = torch.zeros_like(grads[2])  # the gradient of c0
            return tuple(grads)

    generator = torch.Generator().manual_seed(2)
    args = tuple(torch.randn(*shape, generator=generator, dtype=torch.float64, requires_grad=True)
                 for shape in [(3, 2, 2), (2, 2), (2, 2), (8, 2), (8, 2), (8,), (8,)])
    assert not torch.autograd.gradcheck(lambda *a: BrokenForget.apply(*a)[0], args, raise_exception=False)


def test_inference_path_matches_the_autograd_path():
    # Without grad, scratch_fast skips the autograd.Function; both paths must compute the same function.
    torch.manual_seed(0)
    module = build_lstm("scratch_fast", 3, 5, num_layers=2).double()
    x = torch.randn(6, 4, 3, dtype=torch.float64)
    trained_output, (trained_h, trained_c) = module(x.requires_grad_())
    with torch.no_grad():
        output, (h_n, c_n) = module(x)
    assert not output.requires_grad
    for got, want in ((output, trained_output), (h_n, trained_h), (c_n, trained_c)):
        torch.testing.assert_close(got, want.detach(), rtol=0, atol=0)


def test_exports_with_a_dynamic_batch():
    # What MLflow's pt2 model format needs: torch.export with the batch dimension left free.
    from lstm_models.training import LSTMRegressor

    torch.manual_seed(0)
    model = LSTMRegressor("scratch_fast", hidden_size=3).eval()
    example = torch.tensor([[0.0, 0.5, 0.25, 1.0], [1.0, 0.5, 0.25, 1.0]])
    exported = torch.export.export(model, (example,), dynamic_shapes=({0: torch.export.Dim("batch")},))
    batch_of_three = torch.rand(3, 4)
    torch.testing.assert_close(exported.module()(batch_of_three), model(batch_of_three))


def test_each_bias_gets_its_own_gradient_tensor():
    # The layer returns one gradient for both biases (they only appear as a sum); each must still get its own
    # .grad, or accumulating into one would change the other.
    module = build_lstm("scratch_fast", 3, 4)
    for _ in range(2):
        output, _ = module(torch.randn(5, 2, 3))
        output.sum().backward()
    assert module.bias_ih_l0.grad.data_ptr() != module.bias_hh_l0.grad.data_ptr()
    torch.testing.assert_close(module.bias_ih_l0.grad, module.bias_hh_l0.grad)
