"""Which MLflow experiment an entry point's runs go to: the parameter, else MLFLOW_EXPERIMENT_NAME, else lstm-bench,
created with its description."""

import mlflow

from mlflow_project.experiment import DEFAULT_EXPERIMENT, chosen_experiment_id


def _name(experiment_id: str) -> str:
    return mlflow.MlflowClient().get_experiment(experiment_id).name


def test_the_parameter_then_the_environment_then_the_projects_own(sqlite_store, monkeypatch):
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    default = chosen_experiment_id("")
    assert _name(default) == DEFAULT_EXPERIMENT
    assert mlflow.MlflowClient().get_experiment(default).tags["mlflow.note.content"].startswith("Comparisons of LSTM")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "from-the-environment")
    assert _name(chosen_experiment_id("")) == "from-the-environment"
    assert _name(chosen_experiment_id("from-the-parameter")) == "from-the-parameter"
    assert chosen_experiment_id("from-the-parameter") == chosen_experiment_id("from-the-parameter")  # found again
