"""The benchmark suite's helper commands: the A/B comparison, the step profile and the fresh-process
peak-memory probe."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from benchmarks import ab_compare, ceiling, cuda_graph_step, profile_step, round_robin
from lstm_models.benchmarking.grid import SHAPES
from tests.helpers import DEVICES, REPO, needs_cuda


def test_ab_compare_prints_medians_and_ratios(capsys, tmp_path):
    json_path = tmp_path / "medians.json"
    assert ab_compare.main(["--shape", "toy", "--rounds", "1", "--impls", "native,scratch_fast",
                            "--json", str(json_path)]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if "x native" in line]
    assert [row[:2] for row in rows] == [["forward", "native"], ["forward", "scratch_fast"],
                                         ["forward_backward", "native"], ["forward_backward", "scratch_fast"]]
    medians = json.loads(json_path.read_text())
    for pass_name, (native, fast) in (("forward", rows[0:2]), ("forward_backward", rows[2:4])):
        seconds = medians[pass_name]
        assert float(native[2]) == pytest.approx(seconds["native"] * 1e3, abs=0.006)
        assert float(native[4].rstrip("x")) == 1.0  # ratios are to the first implementation
        assert float(fast[4].rstrip("x")) == pytest.approx(seconds["scratch_fast"] / seconds["native"], abs=0.006)
    assert all(row[-2:] == ["page", "faults"] for row in rows)


def test_ab_compare_says_who_gets_huge_pages(capsys, monkeypatch):
    from lstm_models.core.scratch_fast import huge_pages

    monkeypatch.setattr(huge_pages, "_enabled", False)  # as LSTM_BENCH_HUGE_PAGES=0 would
    assert ab_compare.main(["--shape", "toy", "--rounds", "1", "--impls", "native,scratch_fast"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("huge pages:"))
    assert "workspace off" in line and "torch_allocator " in line and "kernel " in line


@pytest.mark.slow  # starts processes
def test_ab_compare_times_scratch_fast_against_a_git_revision(capsys):
    # HEAD's file loads beside the working tree's (the same file in a clean checkout): both are timed.
    assert ab_compare.main(["--shape", "toy", "--rounds", "1", "--impls", "native,scratch_fast",
                            "--against", "HEAD"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "x native" in line]
    assert sum("scratch_fast@HEAD" in line for line in lines) == 2  # forward and forward_backward


def test_round_robin_times_each_call_right_after_an_untimed_call_of_itself():
    order = []
    calls = {name: (lambda name=name: order.append(name)) for name in ("a", "b")}
    medians = round_robin.round_robin_medians(calls, rounds=3)
    assert set(medians) == {"a", "b"} and all(median.seconds >= 0 for median in medians.values())
    rounds = round_robin.WARMUP_ROUNDS + 3
    assert len(order) == 2 * 2 * rounds  # an untimed and a timed call of each, every round
    assert all(order[index] == order[index + 1] for index in range(0, len(order), 2))  # pairs of the same call


def test_round_robin_starts_each_round_one_call_later():
    impls = ["native", "scratch_fast", "scratch_fast@HEAD"]
    orders = [round_robin.rotated(impls, round_index) for round_index in range(4)]
    assert orders == [impls, impls[1:] + impls[:1], impls[2:] + impls[:2], impls]
    # over any len(impls) consecutive rounds, each implementation runs once in each position
    assert all(sorted(order[position] for order in orders[:3]) == sorted(impls) for position in range(3))

@pytest.mark.parametrize("argv, message", [
    (["--against", "no-such-revision"], "--against"),
    (["--impls", "native,lstm9"], "--impls"),
    (["--impls", "native"], "--impls"),
    (["--impls", "native,,scratch"], "--impls"),
    (["--impls", "native,statquest", "--shape", "small"], "--impls: statquest cannot run the small shape"),
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
    assert 0 < fast["products"] < fast["total"] and fast["fused_rnn"] == 0


def test_profile_step_refuses_bad_arguments(capsys):
    with pytest.raises(SystemExit) as exit_info:
        profile_step.main(["--rounds", "0"])
    assert exit_info.value.code == 2 and "--rounds" in capsys.readouterr().err


def test_ceiling_prints_time_and_throughput_of_every_product(capsys):
    assert ceiling.main(["--shape", "toy", "--rounds", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    assert len(lines) == len(ceiling.SQUARE_SIZES) + len(ceiling.layer_products(SHAPES["toy"]))


@pytest.mark.parametrize("shape", ["small", "medium"])
def test_ceiling_counts_the_flops_of_a_training_step(shape):
    # Every product of a forward+backward once (the transposed-view step is the same product, timed for comparison).
    products = [product for product in ceiling.layer_products(SHAPES[shape]) if "transposed view (the same" not in
                product.name]
    assert sum(product.flops * product.calls for product in products) == SHAPES[shape].flops("forward_backward")


def test_ceiling_refuses_bad_arguments(capsys):
    with pytest.raises(SystemExit) as exit_info:
        ceiling.main(["--rounds", "0"])
    assert exit_info.value.code == 2 and "--rounds" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_cuda_graph_step_refuses_without_cuda_in_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cuda_graph_step.main(["--shape", "toy"])
    error = capsys.readouterr().err.splitlines()[-1]
    assert exit_info.value.code == 2 and "CUDA is not available" in error


@needs_cuda
def test_cuda_graph_step_prints_called_and_replayed_times(capsys):
    # The replay is checked against the eager step inside the command; here, that every row came out.
    assert cuda_graph_step.main(["--shape", "small", "--rounds", "3", "--impls", "native,scratch_fast,scratch"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[2:5]]
    assert [row[0] for row in rows] == ["native", "scratch_fast", "scratch"]
    assert all(float(row[1]) > 0 and float(row[3]) > 0 for row in rows)


@pytest.mark.slow  # starts processes
def test_peak_memory_probe_reports_a_step_above_its_baseline():
    done = subprocess.run([sys.executable, "-m", "benchmarks.peak_memory", "scratch_fast", "medium"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    # The step must at least hold its (T, B, H) float32 output: 100 * 64 * 256 * 4 bytes = 6.25 MiB.
    assert result["step_mib"] >= 6.25
    assert result["peak_mib"] == pytest.approx(result["baseline_mib"] + result["step_mib"])


@pytest.mark.slow  # starts processes
@pytest.mark.parametrize("device", DEVICES)
def test_peak_memory_probe_measures_a_later_step_with_what_earlier_ones_left(device):
    done = subprocess.run([sys.executable, "-m", "benchmarks.peak_memory", "scratch_fast", "medium", "--steps", "3",
                           "--device", device], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    # Kept after two steps: at least the (4, T*B, H) float32 input projection, 25 MiB (the CPU pool's buffer, or
    # on CUDA the static one of the replayed loop), and the last step's peak is not below what was kept (within
    # 1 MiB: on CPU the resident set is read just after its high-water mark is reset, and moves in between).
    assert result["steps"] == 3 and result["held_mib"] >= 25
    assert result["step_mib"] >= result["held_mib"] - 1
    refused = subprocess.run([sys.executable, "-m", "benchmarks.peak_memory", "native", "toy", "--steps", "0"],
                             cwd=REPO, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "--steps: must be at least 1 (got 0)" in refused.stderr


@pytest.mark.slow  # starts processes
def test_the_grid_runs_the_implementations_of_a_group_one_after_another():
    # Ratios compare cases measured seconds apart, not a whole implementation's grid apart.
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "benchmarks/test_lstm_passes.py", "--collect-only", "-q",
         "--lstm-devices", "cpu", "--lstm-shapes", "toy,small", "--lstm-impls", "native,scratch_fast"],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    ids = [line.split("[", 1)[1].rstrip("]") for line in collected.stdout.splitlines() if "test_lstm_pass[" in line]
    assert len(ids) == 2 * 2 * 3  # impls x shapes x passes
    for native_case, fast_case in zip(ids[::2], ids[1::2]):
        assert native_case.startswith("native-") and fast_case == "scratch_fast-" + native_case[len("native-"):]


@pytest.mark.slow  # starts processes
@pytest.mark.parametrize("option, value, says", [
    ("--lstm-shapes", "toy,huge", "--lstm-shapes: unknown 'huge'; allowed: 'all' or comma-separated names from toy, small"),
    ("--lstm-impls", "native,no_such_package:LSTM", "--lstm-impls: spec 'no_such_package:LSTM': cannot import "
                                                    "no_such_package"),
])
def test_the_suite_refuses_a_bad_selection_naming_the_option(option, value, says):
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "benchmarks/test_lstm_passes.py", "--collect-only", "-q", option, value],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert collected.returncode != 0
    assert says in collected.stderr


@pytest.mark.parametrize("impl, median_ms, ratio, cell", [
    ("native", 0.1341, 1.0, "0.134 ms"),
    ("scratch", 457.2, 1.6012, "457 ms (1.60x)"),
    ("scratch", 1441.6, 1.8149, "1442 ms (1.81x)"),  # no exponent from 1000 ms up
    ("scratch", 12.5, float("nan"), "12.5 ms"),
])
def test_result_table_cells_read_as_plain_milliseconds(impl, median_ms, ratio, cell):
    from mlflow_project.benchmark_results import time_cell

    assert time_cell(impl, median_ms, ratio) == cell


def test_a_ratios_interval_holds_it_and_narrows_with_steadier_rounds():
    from mlflow_project.benchmark_results import ratio_interval

    generator = np.random.default_rng(1)
    native = list(1.0 + 0.01 * generator.standard_normal(50))
    steady, noisy = (list(0.9 + spread * generator.standard_normal(50)) for spread in (0.01, 0.1))
    steady_low, steady_high = ratio_interval(steady, native)
    noisy_low, noisy_high = ratio_interval(noisy, native)
    assert steady_low < 0.9 < steady_high and noisy_low < 0.9 < noisy_high
    assert steady_high - steady_low < (noisy_high - noisy_low) / 3
    assert all(np.isnan(ratio_interval([1.0], native)))  # one round says nothing of its spread


def test_the_suite_refuses_a_profile_whose_settings_are_not_in_the_environment(monkeypatch):
    from lstm_models.benchmarking.profiles import PROFILES, mismatch

    for name in PROFILES["tuned"]:
        monkeypatch.delenv(name, raising=False)
    assert mismatch("tuned").startswith("profile tuned needs THP_MEM_ALLOC_ENABLE=1")
    for name, value in PROFILES["tuned"].items():
        monkeypatch.setenv(name, value)
    assert mismatch("tuned") is None and mismatch("default") is None
