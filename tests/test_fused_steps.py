"""scratch_fast's compiled CPU loops (lstm_models/core/scratch_fast/fused_steps.py, csrc/fused_steps.cpp): they build
here, match nn.LSTM in float32 (MKL's packed products) and float64, and where the build fails the layer falls back
to its plain loops with one warning, and says so in its run tags. Gradchecks and the buffer pool's overlap cases run
on both paths in test_scratch_fast.py and test_workspace.py."""

import os
import subprocess
import sys
import textwrap

import pytest
import torch

from lstm_models import build_lstm
from lstm_models.core.scratch_fast import fused_steps


def test_the_compiled_loops_build_here_and_take_cpu_float_calls():
    assert fused_steps.path() == "fused", fused_steps.problem()
    assert fused_steps.used_for(torch.empty(1)) and fused_steps.used_for(torch.empty(1, dtype=torch.float64))
    assert not fused_steps.used_for(torch.empty(1, dtype=torch.bfloat16))  # the plain loops take other dtypes


@pytest.mark.usefixtures("cpu_loops")
@pytest.mark.parametrize("dtype", (torch.float32, torch.float64))
def test_training_step_matches_nn_lstm(dtype):
    # float32 runs the recurrent products on MKL's packed weights, float64 on at::addmm: both against nn.LSTM.
    torch.manual_seed(0)
    native = build_lstm("native", 24, 40, num_layers=2, dtype=dtype)
    fast = build_lstm("scratch_fast", 24, 40, num_layers=2, dtype=dtype)
    fast.load_state_dict(native.state_dict())
    x = torch.randn(9, 5, 24, dtype=dtype)
    state = (torch.randn(2, 5, 40, dtype=dtype), torch.randn(2, 5, 40, dtype=dtype))
    results = []
    for module in (native, fast):
        x_grad = x.clone().requires_grad_()
        output, (h_n, c_n) = module(x_grad, state)
        (output.square().sum() + h_n.sum() + c_n.cos().sum()).backward()
        results.append([output, h_n, c_n, x_grad.grad, *(p.grad for p in module.parameters())])
    tolerance = dict(rtol=1e-4, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-12)
    for got, want in zip(results[1], results[0]):
        torch.testing.assert_close(got, want, **tolerance)


FALLBACK_SCRIPT = textwrap.dedent("""
    import warnings
    import torch
    from lstm_models import build_lstm
    from lstm_models.core.scratch_fast import fused_steps
    from mlflow_project.environment import environment_tags

    torch.manual_seed(0)
    native = build_lstm("native", 3, 4, dtype=torch.float64)
    fast = build_lstm("scratch_fast", 3, 4, dtype=torch.float64)
    fast.load_state_dict(native.state_dict())
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            fast(x)[0].sum().backward()
    native(x)[0].sum().backward()
    for got, want in zip(fast.parameters(), native.parameters()):
        torch.testing.assert_close(got.grad, 3 * want.grad)  # three backwards accumulated
    ours = [str(w.message) for w in caught if "scratch_fast" in str(w.message)]
    print(len(ours), fused_steps.path(), environment_tags()["lstm_bench.scratch_fast_loops"])
    print(ours[0] if ours else fused_steps.problem())
""")


@pytest.mark.slow  # a fresh interpreter that imports the tracking side too
@pytest.mark.parametrize("environment, warnings", (
    ({"CXX": "/bin/false"}, 1),  # the compiler fails: one warning, however many calls
    ({"LSTM_BENCH_FUSED_STEPS": "0"}, 0),  # turned off on purpose: no warning
), ids=("build_fails", "turned_off"))
def test_without_the_compiled_loops_the_plain_ones_run(environment, warnings, tmp_path):
    env = {**os.environ, "TORCH_EXTENSIONS_DIR": str(tmp_path), **environment}  # an empty cache: a build is tried
    result = subprocess.run([sys.executable, "-c", FALLBACK_SCRIPT], capture_output=True, text=True, env=env,
                            timeout=240)
    assert result.returncode == 0, result.stderr
    counts, reason = result.stdout.strip().splitlines()
    assert counts.split() == [str(warnings), "plain", "plain"], reason
    if warnings:
        assert reason.startswith("scratch_fast: the fused C++ time loops are unavailable") and "plain" in reason
