"""The same comparison logged to a real `mlflow server` process on 127.0.0.1 (served artifacts)."""

import mlflow
import pytest

from tests.helpers import all_runs, project_env, run_cli

pytestmark = pytest.mark.slow


def test_comparison_logs_to_a_tracking_server(mlflow_server, tmp_path):
    result = run_cli(["-m", "mlflow_project.train", "--impls", "native,scratch", "--seeds", "0",
                      "--max-epochs", "5"], project_env(mlflow_server.url), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert mlflow_server.url in result.stdout
    client = mlflow.MlflowClient(tracking_uri=mlflow_server.url)
    runs = all_runs(client)
    parent = next(r for r in runs if r.data.tags.get("lstm_bench.role") == "comparison")
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert parent.info.status == "FINISHED" and len(children) == 2
    assert all(c.info.status == "FINISHED" for c in children)
    assert len(client.get_metric_history(children[0].info.run_id, "train_loss")) == 5
    assert {a.path for a in client.list_artifacts(parent.info.run_id, "comparison")} >= {
        "comparison/summary.csv", "comparison/loss_curves.png"}
    assert not list((tmp_path).glob("mlruns"))  # artifacts went to the server, not to a local folder
