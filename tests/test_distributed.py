"""Lightning's own DDP engine on two CPU processes: one child run per (implementation, seed), from rank 0."""

from __future__ import annotations

import mlflow
import pytest

from tests.helpers import project_env, run_cli

pytestmark = pytest.mark.slow


def test_ddp_on_two_cpu_processes_logs_each_child_once(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = run_cli(["-m", "mlflow_project.train", "--impls", "native,scratch", "--seeds", "0", "--max-epochs", "6",
                      "--strategy", "ddp", "--devices", "2", "--accelerator", "cpu", "--progress-bar", "off"],
                     project_env(uri), cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    parents = [run for run in runs if run.data.tags.get("lstm_bench.role") == "comparison"]
    children = [run for run in runs if run.data.tags.get("lstm_bench.role") == "training"]
    assert len(parents) == 1 and len(runs) == 3, [run.info.run_name for run in runs]
    assert sorted(run.info.run_name for run in children) == ["native-seed0", "scratch-seed0"]
    client = mlflow.MlflowClient(uri)
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.params["strategy"] == "ddp" and child.data.params["devices"] == "2"
        assert child.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        # One value per epoch: rank 0 alone logs, and the epoch's loss is averaged over both ranks.
        assert [point.step for point in client.get_metric_history(child.info.run_id, "train_loss")] == list(range(1, 7))
    # Both implementations see the same two ranks' data from the same seed: the same function, the same curve.
    native, scratch = sorted(children, key=lambda run: run.info.run_name)
    assert native.data.metrics["final_train_loss"] == pytest.approx(scratch.data.metrics["final_train_loss"], rel=1e-4)
