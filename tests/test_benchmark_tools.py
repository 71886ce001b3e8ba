"""The benchmark suite's helper commands: the A/B comparison, the step profile and the fresh-process
peak-memory probe."""

import json
import subprocess
import sys

import pytest
import torch

from benchmarks import ab_compare, profile_step
from tests.conftest import REPO


def test_ab_compare_prints_medians_and_ratios(capsys):
    assert ab_compare.main(["--shape", "toy", "--rounds", "1", "--impls", "native,scratch_fast"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "x native" in line]
    assert len(lines) == 4  # two passes x two implementations
    assert all(float(line.split()[4].rstrip("x")) > 0 for line in lines)  # the ratio
    assert all(line.endswith("page faults") and float(line.split()[-3]) >= 0 for line in lines)


@pytest.mark.parametrize("argv, message", [
    (["--impls", "native,lstm9"], "--impls"),
    (["--impls", "native"], "--impls"),
    (["--rounds", "0"], "--rounds"),
    (["--shape", "huge"], "--shape"),
])
def test_ab_compare_refuses_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        ab_compare.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def _split_of(output: str, impl: str) -> dict[str, float]:
    """The figures of ``impl``'s summary line: 'impl: total T ms = matrix products P + fused RNN operators F ...'."""
    line = next(line for line in output.splitlines() if line.startswith(f"{impl}: total"))
    words = line.replace("(", " ").split()
    return {"total": float(words[2]), "products": float(words[7]), "fused_rnn": float(words[12])}


def test_profile_step_splits_products_from_the_rest(capsys):
    assert profile_step.main(["--shape", "small", "--rounds", "1", "--impls", "native,scratch_fast"]) == 0
    output = capsys.readouterr().out
    native, fast = _split_of(output, "native"), _split_of(output, "scratch_fast")
    # With oneDNN, nn.LSTM on CPU is one fused operator per pass; scratch_fast's products are separate operators.
    if torch.backends.mkldnn.is_available():
        assert native["fused_rnn"] > 0 and native["products"] == 0
    assert native["total"] > 0
    assert 0 < fast["products"] < fast["total"] and fast["fused_rnn"] == 0


def test_profile_step_refuses_bad_arguments(capsys):
    with pytest.raises(SystemExit) as exit_info:
        profile_step.main(["--rounds", "0"])
    assert exit_info.value.code == 2 and "--rounds" in capsys.readouterr().err


def test_peak_memory_probe_reports_a_step_above_its_baseline():
    done = subprocess.run([sys.executable, "-m", "benchmarks.peak_memory", "scratch_fast", "medium"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    # The step must at least hold its (T, B, H) float32 output: 100 * 64 * 256 * 4 bytes = 6.25 MiB.
    assert result["step_mib"] >= 6.25
    assert result["peak_mib"] == pytest.approx(result["baseline_mib"] + result["step_mib"])
