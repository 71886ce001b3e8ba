"""Same function as nn.LSTM: outputs, final state and every gradient, float64, over the registry and a spread of
shapes. A case an implementation cannot take must be refused with a ValueError, never silently accepted."""

import pytest
import torch

from lstm_models import DEFAULT_SELECTION, build_lstm
from lstm_models.core.parity import PARITY_CASES, compare_with_native, fits
from tests.helpers import (CUDA_FLOAT64_TOLERANCE, DEVICES, FLOAT64_TOLERANCE, assert_same_results,
                           needs_cuda)

CANDIDATES = [impl for impl in DEFAULT_SELECTION if impl != "native"]  # compiled: tests/test_compiled.py


@pytest.mark.parametrize("case", PARITY_CASES, ids=lambda case: case.name)
@pytest.mark.parametrize("impl", CANDIDATES)
def test_matches_native_in_float64(impl, case):
    if not fits(impl, case):
        with pytest.raises(ValueError, match=impl):
            build_lstm(impl, **case.lstm_kwargs())
        return
    assert_same_results(*compare_with_native(impl, case, dtype=torch.float64), case, FLOAT64_TOLERANCE, "cpu")


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


CUDA_PAIRS = [(impl, case) for impl in CANDIDATES for case in PARITY_CASES if fits(impl, case)]


@needs_cuda
@pytest.mark.parametrize("impl, case", CUDA_PAIRS, ids=[f"{impl}-{case.name}" for impl, case in CUDA_PAIRS])
def test_matches_native_on_cuda(impl, case):
    got, want = compare_with_native(impl, case, dtype=torch.float64, device="cuda")
    assert_same_results(got, want, case, CUDA_FLOAT64_TOLERANCE, "cuda")
