"""Same function as nn.LSTM: outputs, final state and every gradient, float64, over the registry and a spread of
shapes. A case an implementation cannot take must be refused with a ValueError, never silently accepted."""

import pytest
import torch

from lstm_models import IMPLEMENTATIONS, build_lstm
from lstm_models.core.parity import PARITY_CASES, compare_with_native, fits
from tests.conftest import DEVICES, needs_cuda

# float64 keeps about 16 significant digits; sums over time steps and batch lose a few, hence 1e-13.
FLOAT64_TOLERANCE = dict(rtol=1e-11, atol=1e-13)
CANDIDATES = [impl for impl in IMPLEMENTATIONS if impl != "native"]


@pytest.mark.parametrize("case", PARITY_CASES, ids=lambda case: case.name)
@pytest.mark.parametrize("impl", CANDIDATES)
def test_matches_native_in_float64(impl, case):
    if not fits(impl, case):
        with pytest.raises(ValueError, match=impl):
            build_lstm(impl, **case.lstm_kwargs())
        return
    assert_same_results(*compare_with_native(impl, case, dtype=torch.float64), case, FLOAT64_TOLERANCE, "cpu")


def assert_same_results(got: dict, want: dict, case, tolerance: dict, device: str) -> None:
    """Every output and gradient of nn.LSTM present, on ``device``, of the same shape and within ``tolerance``."""
    assert set(got) == set(want)
    assert "grad_weight_ih_l0" in want and "grad_input" in want
    if case.initial_state:
        assert "grad_h0" in want and "grad_c0" in want
    for key in want:
        assert got[key].shape == want[key].shape and got[key].device.type == device, key
        torch.testing.assert_close(got[key], want[key], **tolerance, msg=lambda m, key=key: f"{key}: {m}")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("impl", CANDIDATES)
def test_float32_close_to_native(impl, device):
    # cuDNN may run float32 products in TF32 (torch.backends.cudnn.allow_tf32, on by default): compare in full
    # float32, the precision torch.mm uses by default, so that the tolerance is float32's and not TF32's.
    case = next(c for c in PARITY_CASES if c.name == ("initial_state" if impl != "statquest" else "toy"))
    allowed = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        got, want = compare_with_native(impl, case, dtype=torch.float32, device=device)
    finally:
        torch.backends.cudnn.allow_tf32 = allowed
    for key in want:
        assert got[key].dtype == torch.float32 and got[key].device.type == device, key
        torch.testing.assert_close(got[key], want[key], rtol=1e-4, atol=1e-5)


# On CUDA the products' summation order is cuBLAS's and cuDNN's, not MKL's: a little more rounding apart.
CUDA_FLOAT64_TOLERANCE = dict(rtol=1e-9, atol=1e-11)
CUDA_PAIRS = [(impl, case) for impl in CANDIDATES for case in PARITY_CASES if fits(impl, case)]


@needs_cuda
@pytest.mark.parametrize("impl, case", CUDA_PAIRS, ids=[f"{impl}-{case.name}" for impl, case in CUDA_PAIRS])
def test_matches_native_on_cuda(impl, case):
    got, want = compare_with_native(impl, case, dtype=torch.float64, device="cuda")
    assert_same_results(got, want, case, CUDA_FLOAT64_TOLERANCE, "cuda")
