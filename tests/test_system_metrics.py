"""``-P system_metrics=on``: MLflow's system metrics (CPU, memory) on each child run; off by default."""

import mlflow
import pytest

from tests.helpers import all_runs, project_env, run_cli

pytestmark = pytest.mark.slow  # trains


@pytest.mark.parametrize("switch", ["on", "off"])
def test_each_child_logs_system_metrics_when_asked(switch, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    # One sample a second, logged at once: the children train for a few seconds.
    env = project_env(uri, MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL="1", MLFLOW_SYSTEM_METRICS_SAMPLES_BEFORE_LOGGING="1")
    done = run_cli(["-m", "mlflow_project.train", "--impls", "native,scratch", "--seeds", "0", "--max-epochs", "250",
                    "--workers", "2", "--system-metrics", switch, "--progress-bar", "off"], env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    children = [run for run in all_runs(mlflow.MlflowClient(uri)) if run.data.tags.get("lstm_bench.role") == "training"]
    assert len(children) == 2
    for child in children:
        logged = {key for key in child.data.metrics if key.startswith("system/")}
        assert ({"system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"} <= logged) == (
            switch == "on"), logged
