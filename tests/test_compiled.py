"""``compiled``: scratch's cell under torch.compile is nn.LSTM's function, and the benchmark reports its first call
(the compilation) apart from its timed rounds."""

import json
import subprocess
import sys

import pytest

from lstm_models.benchmarking.suite_environment import suite_environment
from lstm_models.check import FAIL, PASS, conformance
from tests.helpers import REPO

pytestmark = pytest.mark.slow  # compiles


def test_compiled_is_nn_lstms_function():
    checks = {check.name: check for check in conformance("compiled")}
    assert not [check for check in checks.values() if check.result == FAIL]
    assert all(checks[name].result == PASS for name in checks if name.startswith(("float64", "float32")))
    assert checks["torch.export (pt2 model)"].result == PASS  # the plain cell, traced


def test_the_benchmark_records_the_checks_and_the_first_call_apart(tmp_path):
    json_path = tmp_path / "results.json"
    done = subprocess.run([sys.executable, "-m", "pytest", "benchmarks/test_lstm_passes.py", "--benchmark-only",
                           "--lstm-impls", "native,compiled", "--lstm-shapes", "toy", "--lstm-devices", "cpu",
                           f"--benchmark-json={json_path}", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"],
                          cwd=REPO, capture_output=True, text=True, timeout=600, env=suite_environment())
    assert done.returncode == 0, done.stdout[-3000:]
    entries = json.loads(json_path.read_text())["benchmarks"]
    compiled = [entry["extra_info"] for entry in entries if entry["extra_info"]["impl"] == "compiled"]
    assert sorted(info["pass"] for info in compiled) == ["backward", "forward", "forward_backward"]
    assert all(isinstance(info["first_call_s"], float) and isinstance(info["check_s"], float) for info in compiled)
