"""The `benchmark` entry point with a tiny grid, through `mlflow run`, into a temporary sqlite store."""

import json

import mlflow
import pytest

from lstm_models.benchmarking.grid import SHAPES

from tests.helpers import REPO, project_env, run_cli

pytestmark = pytest.mark.slow


def _single_run(uri):
    """The one benchmark run (``mlflow run`` also leaves its own launcher run in the Default experiment)."""
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list",
                              filter_string="tags.`lstm_bench.role` = 'benchmark'")
    assert len(runs) == 1
    return runs[0]


def test_benchmark_run_logs_metrics_artifacts_and_machine(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = run_cli(["-m", "mlflow", "run", str(REPO), "-e", "benchmark", "--env-manager", "local",
                      "-P", "impls=native,scratch", "-P", "shapes=toy", "-P", "device=cpu", "-P", "threads=1"],
                     project_env(uri), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "median time (ratio to native)" in result.stdout
    run = _single_run(uri)
    assert run.info.status == "FINISHED"
    metrics = run.data.metrics
    for pass_name in ("forward", "backward", "forward_backward"):
        native, scratch = (f"cpu.{pass_name}.toy.{impl}" for impl in ("native", "scratch"))
        assert metrics[f"{scratch}.ratio_to_native"] == pytest.approx(
            metrics[f"{scratch}.median_ms"] / metrics[f"{native}.median_ms"])
        flops = SHAPES["toy"].flops(pass_name)
        assert metrics[f"{native}.gflops"] == pytest.approx(flops / (metrics[f"{native}.median_ms"] / 1e3) / 1e9)
    tags = run.data.tags
    assert tags["lstm_bench.torch_threads"] == "1" and tags["lstm_bench.cpu_model"]
    assert tags["lstm_bench.role"] == "benchmark" and tags["lstm_bench.torch_version"]
    assert tags["lstm_bench.huge_pages.workspace"] in ("on", "off") and tags["lstm_bench.huge_pages.kernel"]
    names = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "benchmark")}
    assert names >= {"benchmark/results.json", "benchmark/results.csv", "benchmark/results.md",
                     "benchmark/times_cpu.png"}
    results = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="benchmark/results.json",
                                                  dst_path=str(tmp_path / "downloaded"))
    with open(results) as raw:
        assert set(json.load(raw)["machine_info"]["huge_pages"]) == {"workspace", "torch_allocator", "kernel"}
    mlflow.set_tracking_uri(None)


def test_benchmark_scaling_sweeps_log_slopes(sqlite_store, tmp_path):
    # The entry point's main in this process (the suite still runs in its own): `mlflow run -e benchmark` is
    # covered above, and a second interpreter would mostly spend its time importing MLflow.
    from mlflow_project import benchmark

    assert benchmark.main(["--impls", "native", "--shapes", "toy", "--threads", "1", "--scaling", "on",
                           "--output-dir", str(tmp_path / "out")]) == 0
    run = _single_run(sqlite_store)
    slopes = {k: v for k, v in run.data.metrics.items() if k.startswith("scaling.")}
    assert set(slopes) == {"scaling.seq_len.native.slope", "scaling.hidden_size.native.slope"}
    assert all(value == value and abs(value) < 100 for value in slopes.values())  # finite fits, not NaN
    assert (tmp_path / "out" / "scaling.png").exists() and (tmp_path / "out" / "scaling_slopes.csv").exists()
    mlflow.set_tracking_uri(None)
