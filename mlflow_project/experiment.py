"""The MLflow experiment the project's runs go to, and what it says of itself in the UI.

Runs go to a named experiment, ``lstm-bench`` unless the ``experiment`` parameter or ``MLFLOW_EXPERIMENT_NAME``
names another, so that the UI lists the comparisons under a name of their own with a description of how to read
them, rather than in MLflow's Default experiment. ``mlflow run`` creates its run before the entry point starts,
in the experiment it was given (``--experiment-name``) or in Default: a run it created elsewhere becomes the
parent when it is in the chosen experiment; otherwise it stays a small *launcher* run that links to the
comparison, which starts in the chosen experiment.
"""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
from mlflow.utils.mlflow_tags import MLFLOW_RUN_NOTE

from .sqlite_store import sqlite_path

DEFAULT_EXPERIMENT = "lstm-bench"
MLFLOW_DEFAULT_EXPERIMENT_ID = "0"
# The UI's kind of experiment: "custom_model_development" opens on training runs, not on a GenAI overview.
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}
DESCRIPTION = """Comparisons of LSTM implementations with `torch.nn.LSTM`, and their benchmarks (lstm-bench).

- A **comparison** is a parent run (tag `lstm_bench.role = comparison`, named `compare-<dataset>`): its
  Description holds the summary table over seeds; its artifacts, under `comparison/`, the loss curves, the
  predictions and the loss gap to `nn.LSTM` as figures.
- Its child runs are one implementation trained from one seed (`<impl>-seed<k>`), each with its conformance to
  `nn.LSTM` (`conformance.md`, tag `lstm_bench.conformance`) and its model (`<impl>-seed<k>` in Models).
- To compare: open a comparison, expand it in the runs list, tick its children and press **Compare**; or chart
  `train_loss` over its children.
- A **benchmark** run (`lstm_bench.role = benchmark`) holds the timings of one machine: median times, ratios to
  `nn.LSTM` and figures under `benchmark/`.
"""


def _launching_run() -> mlflow.entities.Run | None:
    run_id = os.environ.get("MLFLOW_RUN_ID")
    return mlflow.MlflowClient().get_run(run_id) if run_id else None


def artifact_location(name: str) -> str | None:
    """Beside a sqlite store, ``mlruns/<experiment>``: MLflow's default, ``./mlruns``, is relative to the folder the
    command runs in, which under ``mlflow run`` is the project's, wherever the store is. None elsewhere (a server
    chooses)."""
    path = sqlite_path(mlflow.get_tracking_uri())
    return None if path is None else (Path(path).resolve().parent / "mlruns" / name).as_uri()


def _experiment_id(name: str) -> str:
    """The experiment called ``name``, created with the description when it does not exist yet (by whichever of
    several processes starting at once gets there first)."""
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            return client.create_experiment(name, artifact_location=artifact_location(name),
                                            tags={MLFLOW_RUN_NOTE: DESCRIPTION, **EXPERIMENT_TAGS})
        except mlflow.exceptions.MlflowException as error:
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            experiment = client.get_experiment_by_name(name)
    if experiment.name == DEFAULT_EXPERIMENT:  # this project's own; an experiment the user named stays theirs
        for key, value in {MLFLOW_RUN_NOTE: DESCRIPTION, **EXPERIMENT_TAGS}.items():
            if key not in experiment.tags:
                client.set_experiment_tag(experiment.experiment_id, key, value)
    return experiment.experiment_id


def chosen_experiment_id(configured: str) -> str:
    """The parameter's name, else ``MLFLOW_EXPERIMENT_NAME``, else the one ``mlflow run`` was given, else
    ``lstm-bench``."""
    name = configured or os.environ.get("MLFLOW_EXPERIMENT_NAME", "")
    if name:
        return _experiment_id(name)
    launching = _launching_run()
    if launching is not None and launching.info.experiment_id != MLFLOW_DEFAULT_EXPERIMENT_ID:
        return launching.info.experiment_id
    given = os.environ.get("MLFLOW_EXPERIMENT_ID", "")
    if given and given != MLFLOW_DEFAULT_EXPERIMENT_ID:
        return given
    return _experiment_id(DEFAULT_EXPERIMENT)


def start_parent_run(experiment_id: str, run_name: str) -> mlflow.ActiveRun:
    """The project's run for this entry point: ``mlflow run``'s own when it is in the chosen experiment; else a
    new run there, with ``mlflow run``'s (in another experiment) tagged and described as its launcher."""
    launching = _launching_run()
    if launching is None or launching.info.experiment_id == experiment_id:
        return mlflow.start_run(run_name=run_name, experiment_id=experiment_id)
    del os.environ["MLFLOW_RUN_ID"]  # MLflow would resume that run; the children inherit this environment
    run = mlflow.start_run(run_name=run_name, experiment_id=experiment_id,
                           tags={"lstm_bench.launched_by": launching.info.run_id})
    client = mlflow.MlflowClient()
    client.set_tag(launching.info.run_id, "lstm_bench.role", "launcher")
    client.set_tag(launching.info.run_id, "lstm_bench.launched", run.info.run_id)
    client.set_tag(launching.info.run_id, MLFLOW_RUN_NOTE,
                   f"`mlflow run` started this entry point; its run is `{run.info.run_id}` in experiment "
                   f"`{experiment_id}`: [open it](#/experiments/{experiment_id}/runs/{run.info.run_id}).")
    return run


def run_address(experiment_id: str, run_id: str, uri: str | None = None) -> str:
    """The UI address that opens a run: on the tracking server itself, or on ``mlflow ui``'s default port."""
    uri = uri or mlflow.get_tracking_uri()
    base = uri.rstrip("/") if uri.startswith(("http://", "https://")) else "http://127.0.0.1:5000"
    # workflowType: the UI's "Model training" view (runs, models), not its GenAI one.
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}?workflowType=machine_learning"
