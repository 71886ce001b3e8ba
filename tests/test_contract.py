"""Calling conventions shared with nn.LSTM: shapes, dtypes, devices, errors for wrong inputs."""

import pytest
import torch

from lstm_models import DEFAULT_SELECTION, build_lstm

HAND_WRITTEN = [i for i in DEFAULT_SELECTION if i != "native"]  # compiled: tests/test_compiled.py


def _sizes(impl):
    return (1, 1, 1) if impl == "statquest" else (3, 5, 2)


@pytest.mark.parametrize("impl", DEFAULT_SELECTION)
@pytest.mark.parametrize("batch_first", [False, True])
def test_output_shapes(impl, batch_first):
    input_size, hidden_size, num_layers = _sizes(impl)
    lstm = build_lstm(impl, input_size, hidden_size, num_layers, batch_first=batch_first)
    x = torch.randn(4, 7, input_size) if batch_first else torch.randn(7, 4, input_size)
    output, (h_n, c_n) = lstm(x)
    assert output.shape == ((4, 7, hidden_size) if batch_first else (7, 4, hidden_size))
    assert h_n.shape == c_n.shape == (num_layers, 4, hidden_size)
    output, (h_n, c_n) = lstm(torch.randn(7, input_size))
    assert output.shape == (7, hidden_size) and h_n.shape == (num_layers, hidden_size)


@pytest.mark.parametrize("impl", HAND_WRITTEN)
def test_wrong_state_shape_is_refused(impl):
    input_size, hidden_size, num_layers = _sizes(impl)
    lstm = build_lstm(impl, input_size, hidden_size, num_layers)
    bad = torch.zeros(num_layers, 3, hidden_size)
    with pytest.raises(RuntimeError, match="h0"):
        lstm(torch.randn(5, 2, input_size), (bad, bad))


@pytest.mark.parametrize("impl", HAND_WRITTEN)
def test_wrong_input_size_is_refused(impl):
    input_size, hidden_size, num_layers = _sizes(impl)
    with pytest.raises(RuntimeError, match="input_size"):
        build_lstm(impl, input_size, hidden_size, num_layers)(torch.randn(5, 2, input_size + 1))


@pytest.mark.parametrize("impl", HAND_WRITTEN)
def test_float64_module_keeps_float64(impl):
    lstm = build_lstm(impl, *_sizes(impl), dtype=torch.float64)
    output, (h_n, _) = lstm(torch.randn(3, 2, _sizes(impl)[0], dtype=torch.float64))
    assert output.dtype == h_n.dtype == torch.float64


@pytest.mark.parametrize("impl", HAND_WRITTEN)
def test_module_moves_with_to(impl):
    lstm = build_lstm(impl, *_sizes(impl)).to(torch.float64)
    assert all(p.dtype == torch.float64 for p in lstm.parameters())
    lstm(torch.randn(3, 2, _sizes(impl)[0], dtype=torch.float64))
