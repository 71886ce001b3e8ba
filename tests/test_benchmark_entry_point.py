"""The `benchmark` entry point with a tiny grid, through `mlflow run`, into a temporary sqlite store."""

import itertools
import json
import os

import mlflow
import pytest

from lstm_models.benchmarking.grid import SHAPES
from lstm_models.benchmarking.profiles import PROFILES

from tests.helpers import REPO, project_env, run_cli

pytestmark = pytest.mark.slow


def _single_run(uri):
    """The one benchmark run (``mlflow run`` also leaves its own launcher run in the Default experiment)."""
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list",
                              filter_string="tags.`lstm_bench.role` = 'benchmark'")
    assert len(runs) == 1
    return runs[0]


def test_benchmark_run_logs_both_profiles_metrics_artifacts_and_machine(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = run_cli(["-m", "mlflow", "run", str(REPO), "-e", "benchmark", "--env-manager", "local",
                      "-P", "impls=native,scratch", "-P", "shapes=toy", "-P", "device=cpu", "-P", "threads=1"],
                     project_env(uri), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "cpu, profile tuned: median time (ratio to native, 95 % interval)" in result.stdout
    run = _single_run(uri)
    assert run.info.status == "FINISHED"
    metrics = run.data.metrics
    for profile, pass_name in itertools.product(PROFILES, ("forward", "backward", "forward_backward")):
        native, scratch = (f"{profile}.cpu.{pass_name}.toy.{impl}" for impl in ("native", "scratch"))
        assert metrics[f"{scratch}.ratio_to_native"] == pytest.approx(
            metrics[f"{scratch}.median_ms"] / metrics[f"{native}.median_ms"])
        assert metrics[f"{scratch}.ratio_low"] <= metrics[f"{scratch}.ratio_to_native"] <= metrics[
            f"{scratch}.ratio_high"]
        flops = SHAPES["toy"].flops(pass_name)
        assert metrics[f"{native}.gflops"] == pytest.approx(flops / (metrics[f"{native}.median_ms"] / 1e3) / 1e9)
    tags = run.data.tags
    for profile, settings in PROFILES.items():  # what each profile set, as tags
        assert all(tags[f"lstm_bench.profile.{profile}.{name}"] == value for name, value in settings.items())
    assert tags["lstm_bench.profile.default.THP_MEM_ALLOC_ENABLE"] in ("(unset)", os.environ.get(
        "THP_MEM_ALLOC_ENABLE"))
    assert tags["lstm_bench.torch_threads"] == "1" and tags["lstm_bench.cpu_model"]
    assert tags["lstm_bench.role"] == "benchmark" and tags["lstm_bench.torch_version"]
    assert tags["lstm_bench.huge_pages.workspace"] in ("on", "off") and tags["lstm_bench.huge_pages.kernel"]
    assert tags["lstm_bench.scratch_fast_loops"] == "fused"  # the compiled loops built here and ran
    names = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "benchmark")}
    assert names >= {"benchmark/results_default.json", "benchmark/results_tuned.json", "benchmark/results.csv",
                     "benchmark/results.md", "benchmark/times_default_cpu.png", "benchmark/ratios_cpu.png"}
    for profile in PROFILES:  # each suite process recorded its profile and what it found in its environment
        results = mlflow.artifacts.download_artifacts(run_id=run.info.run_id,
                                                      artifact_path=f"benchmark/results_{profile}.json",
                                                      dst_path=str(tmp_path / "downloaded"))
        with open(results) as raw:
            machine = json.load(raw)["machine_info"]
        assert machine["profile"] == profile and set(machine["huge_pages"]) == {"workspace", "torch_allocator", "kernel"}
        assert all(machine["profile_settings"][name] == value for name, value in PROFILES[profile].items())
    mlflow.set_tracking_uri(None)


def test_benchmark_scaling_sweeps_log_slopes(sqlite_store, tmp_path):
    # The entry point's main in this process (the suite still runs in its own): `mlflow run -e benchmark` is
    # covered above, and a second interpreter would mostly spend its time importing MLflow.
    from mlflow_project import benchmark

    assert benchmark.main(["--impls", "native", "--shapes", "toy", "--threads", "1", "--scaling", "on",
                           "--profile", "default", "--output-dir", str(tmp_path / "out")]) == 0
    run = _single_run(sqlite_store)
    slopes = {k: v for k, v in run.data.metrics.items() if ".scaling." in k}
    assert set(slopes) == {"default.scaling.seq_len.native.slope", "default.scaling.hidden_size.native.slope"}
    assert all(value == value and abs(value) < 100 for value in slopes.values())  # finite fits, not NaN
    assert (tmp_path / "out" / "scaling.png").exists() and (tmp_path / "out" / "scaling_slopes.csv").exists()
    mlflow.set_tracking_uri(None)
