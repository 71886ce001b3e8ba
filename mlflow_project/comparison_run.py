"""The parent run of a comparison: start it, train every child, and log the comparison on it."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import mlflow
import pandas as pd

from lstm_models import label_of

from .child_pool import train_children
from .child_run import ChildResult, child_name, device_of, run_name
from .comparison import display_table, write_comparison
from .config import TrainConfig
from .datasets import log_dataset, mlflow_dataset
from .descriptions import describe
from .environment import environment_tags
from .experiment import chosen_experiment_id, run_address, start_parent_run
from .interruption import Interrupted


def histories_frame(results: list[ChildResult]) -> pd.DataFrame:
    rows = [(r.impl, r.seed, r.run_id, metric, epoch, value)
            for r in results for metric, series in r.history.items() for epoch, value in series]
    return pd.DataFrame(rows, columns=["impl", "seed", "run_id", "metric", "epoch", "value"])


def runs_frame(results: list[ChildResult]) -> pd.DataFrame:
    return pd.DataFrame([{"impl": r.impl, "seed": r.seed, "run_id": r.run_id, "status": r.status,
                          "reason": r.reason, "conformance": r.conformance, **r.finals} for r in results])


def check_conformance(config: TrainConfig) -> dict[str, list]:
    """``lstm_models.check`` of every implementation, before anything trains: a failing one is still trained
    (its user wants to see how it trains), and its runs and the summary say that it differs from nn.LSTM."""
    from lstm_models.check import conformance, first_failure

    checks = {}
    for spec in config.impls:
        checks[spec] = conformance(spec)
        failure = first_failure(checks[spec])
        shown = "nn.LSTM's function" if failure is None else f"differs from nn.LSTM ({failure.name}: {failure.detail})"
        print(f"checked {label_of(spec)} against nn.LSTM: {shown}", flush=True)
    return checks


def log_conformance(result: ChildResult, checks: list) -> None:
    """The implementation's conformance table and verdict on its child run (``lstm_bench.conformance``)."""
    from lstm_models.check import table, verdict

    result.conformance = verdict(checks)
    client = mlflow.MlflowClient()
    client.log_text(result.run_id, table(checks, tablefmt="github") + "\n", "conformance.md")
    client.set_tag(result.run_id, "lstm_bench.conformance", result.conformance)


def log_new_params(params: dict[str, str]) -> None:
    """Log the parameters the run does not have yet (``mlflow run`` has already logged the ones it was given,
    and MLflow refuses to change a logged value)."""
    run = mlflow.active_run()
    existing = mlflow.MlflowClient().get_run(run.info.run_id).data.params
    mlflow.log_params({key: value for key, value in params.items() if key not in existing})


def log_summary_metrics(summary: pd.DataFrame) -> None:
    metrics = {}
    for row in summary.to_dict("records"):
        for key, value in row.items():
            if key.endswith("_mean") and pd.notna(value):
                metrics[f"{row['impl']}.{key.removesuffix('_mean')}"] = float(value)
    mlflow.log_metrics(metrics)


def run_comparison(config: TrainConfig, raw_params: dict[str, str], datamodule, progress_bar: bool = False,
                   output_dir: Path | None = None) -> str:
    """Train every (implementation, seed) as a child of one parent run; returns the parent run id."""
    dataset = mlflow_dataset(datamodule)
    labels = getattr(datamodule, "labels", None)
    experiment_id = chosen_experiment_id(config.experiment)
    with start_parent_run(experiment_id, f"compare-{datamodule.describe()['name']}") as parent:
        log_new_params(raw_params)
        mlflow.set_tags({**environment_tags(device_of(config)), "lstm_bench.role": "comparison"})
        # Logged here first, so the children (possibly several processes at once) link to an existing record.
        log_dataset(dataset, context="comparison")
        started = time.perf_counter()
        try:
            checks = check_conformance(config)
            results = train_all(config, datamodule, dataset, progress_bar, parent)
            by_label = {label_of(spec): checks[spec] for spec in config.impls}
            for result in results:
                log_conformance(result, by_label[result.impl])
        except Interrupted as interruption:
            end_interrupted(parent.info.run_id, str(interruption))
            raise
        order = {(label_of(impl), seed): position for position, (impl, seed) in enumerate(config.runs)}
        results.sort(key=lambda result: order[result.impl, result.seed])
        with tempfile.TemporaryDirectory() as scratch:
            folder = Path(scratch) / "comparison"
            summary = write_comparison(runs_frame(results), histories_frame(results), labels, folder)
            mlflow.log_artifacts(str(folder), artifact_path="comparison")
            describe(parent.info.run_id, summary, results, {label_of(spec): spec for spec in config.impls},
                     datamodule.describe()["name"], sorted(path.name for path in folder.glob("*.png")))
            if output_dir is not None:
                output_dir.mkdir(parents=True, exist_ok=True)
                for path in folder.iterdir():
                    (output_dir / path.name).write_bytes(path.read_bytes())
        log_summary_metrics(summary)
        mlflow.log_metric("comparison_seconds", time.perf_counter() - started)
        print_summary(summary, parent.info.run_id, parent.info.experiment_id)
    return parent.info.run_id


def train_all(config: TrainConfig, datamodule, dataset, progress_bar: bool,
              parent: mlflow.entities.Run) -> list[ChildResult]:
    """Every (implementation, seed) as a child run, with a line of progress per run."""
    results: list[ChildResult] = []
    total, workers = len(config.runs), config.worker_count
    name = datamodule.describe()["name"]
    if workers > 1:
        print(f"Training {total} runs ({config.max_epochs} epochs each on {name}) in {workers} worker processes",
              flush=True)
    else:
        print(f"[1/{total}] {run_name(*config.runs[0])}: {config.max_epochs} epochs on {name}", flush=True)
    for index, result in enumerate(train_children(config, datamodule, dataset, progress_bar, parent), start=1):
        results.append(result)
        shown = ", ".join(f"{k.removeprefix('final_')}={v:.4g}" for k, v in result.finals.items()
                          if k.startswith("final_"))
        outcome = f"done in {result.finals['training_seconds']:.1f} s ({shown})" if result.status == "FINISHED" \
            else f"{result.status}: {result.reason}"
        print(f"[{index}/{total}] {child_name(result.impl, result.seed)}: {outcome}", flush=True)
        if workers == 1 and index < total:
            print(f"[{index + 1}/{total}] {run_name(*config.runs[index])}: {config.max_epochs} epochs on {name}",
                  flush=True)
    return results


def end_interrupted(parent_run_id: str, signal_name: str) -> None:
    """Children still RUNNING (a worker that could not end its own) and the parent end KILLED."""
    client = mlflow.MlflowClient()
    parent = client.get_run(parent_run_id)
    running = client.search_runs([parent.info.experiment_id],
                                 filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}' "
                                               "and attributes.status = 'RUNNING'")
    for child in running:
        client.set_tag(child.info.run_id, "lstm_bench.interrupted_by", signal_name)
        client.set_terminated(child.info.run_id, status="KILLED")
    mlflow.set_tag("lstm_bench.interrupted_by", signal_name)
    mlflow.end_run("KILLED")


def print_summary(summary: pd.DataFrame, run_id: str, experiment_id: str) -> None:
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print("\nSummary over seeds (mean ± std):")
        print(display_table(summary).to_string(index=False))
    uri = mlflow.get_tracking_uri()
    print(f"\nParent run: {run_id} (experiment {experiment_id}) in {uri}")
    if not uri.startswith(("http://", "https://")):
        print(f"Start the UI:     mlflow ui --backend-store-uri {uri}")
    print(f"Open the comparison: {run_address(experiment_id, run_id, uri)}")
