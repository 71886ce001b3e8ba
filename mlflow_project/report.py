"""Entry point ``report``: a self-contained report of one finished comparison, read back from MLflow.

    python -m mlflow_project.report [--parent-run-id ID] [--output-dir reports]

Reads the comparison's parent and child runs with ``mlflow.search_runs`` and their metric histories, rebuilds
the summary and figures with the same code the ``main`` entry point uses, and writes ``report.md`` and a
single-file ``report.html`` (figures embedded) to ``OUTPUT_DIR/<parent run id>/``, logging the folder as the
parent run's ``report`` artifact too.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import jinja2
import mlflow
import pandas as pd

from lstm_models.training import COMPANY_LABELS

from .benchmark_report import BENCHMARKS_INTRO, benchmarks_by_machine
from .comparison import display_table, markdown_table, write_comparison
from .tracking_store import tracking_store_problem
from .cli import add_arguments, parameter, parse_config, raw_arguments, refuse, refuse_if_refused, text

HISTORY_METRICS = ("train_loss", "val_loss", *(f"prediction_{name}" for name in COMPANY_LABELS))
EXIT_NOT_FOUND = 2
# autoescape: run names, tags and parameters are the user's text.
_TEMPLATES = jinja2.Environment(loader=jinja2.PackageLoader("mlflow_project", "templates"), autoescape=True)


class ReportError(RuntimeError):
    """Nothing to report on: no comparison found, or the given run is not one."""


def find_parent(parent_run_id: str | None) -> mlflow.entities.Run:
    client = mlflow.MlflowClient()
    if parent_run_id:
        try:
            run = client.get_run(parent_run_id)
        except mlflow.exceptions.MlflowException:
            raise ReportError(f"parent_run_id: no run {parent_run_id!r} in {mlflow.get_tracking_uri()}") from None
        if run.data.tags.get("lstm_bench.role") != "comparison":
            raise ReportError(f"parent_run_id: run {parent_run_id} is not a comparison (no lstm_bench.role tag)")
        return run
    found = mlflow.search_runs(search_all_experiments=True, output_format="list", max_results=1,
                               filter_string="tags.`lstm_bench.role` = 'comparison'",
                               order_by=["attributes.start_time DESC"])
    if not found:
        raise ReportError(f"no comparison run in {mlflow.get_tracking_uri()}; run `mlflow run .` first")
    return found[0]


def read_comparison(parent: mlflow.entities.Run) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The child runs (one row each, final metrics as columns) and their per-epoch histories (long format)."""
    children = mlflow.search_runs(experiment_ids=[parent.info.experiment_id], output_format="list",
                                  filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    client = mlflow.MlflowClient()
    runs, history_rows = [], []
    for child in children:
        impl, seed = child.data.params.get("impl"), int(child.data.params.get("seed", -1))
        runs.append({"impl": impl, "seed": seed, "run_id": child.info.run_id, "status": child.info.status,
                     "conformance": child.data.tags.get("lstm_bench.conformance", ""), **child.data.metrics})
        for metric in HISTORY_METRICS:
            for point in client.get_metric_history(child.info.run_id, metric):
                history_rows.append((impl, seed, child.info.run_id, metric, point.step, point.value))
    histories = pd.DataFrame(history_rows, columns=["impl", "seed", "run_id", "metric", "epoch", "value"])
    return pd.DataFrame(runs).sort_values(["impl", "seed"]), histories.sort_values(["impl", "seed", "metric", "epoch"])


def render(parent: mlflow.entities.Run, summary: pd.DataFrame, folder: Path) -> tuple[Path, Path]:
    """report.md (figures linked) and report.html (figures embedded, one file to send around)."""
    params = parent.data.params
    title = f"LSTM comparison {parent.info.run_id}"
    when = datetime.fromtimestamp(parent.info.start_time / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    machine = parent.data.tags.get("lstm_bench.cpu_model", "unknown CPU")
    intro = (f"Started {when} on {machine} (torch {parent.data.tags.get('lstm_bench.torch_version', '?')}), "
             f"tracking URI {mlflow.get_tracking_uri()}.")
    param_table = pd.DataFrame(sorted(params.items()), columns=["parameter", "value"])
    figures = [path for path in ("loss_curves.png", "predictions.png", "loss_gap_vs_native.png")
               if (folder / path).exists()]
    table = display_table(summary)
    markdown = [f"# {title}", "", intro, "", "## Summary over seeds (mean ± std)", "", markdown_table(table), "",
                "## Parameters", "", markdown_table(param_table), "", "## Figures", ""]
    markdown += [f"![{name}]({name})" for name in figures]
    machines = benchmarks_by_machine()
    if machines:
        markdown += ["", "## Benchmarks by machine", "", BENCHMARKS_INTRO, ""]
        for machine, run, table in machines:
            markdown += [f"### {machine}", "", f"Run `{run.info.run_id}`.", "", markdown_table(table), ""]
    md_path = folder / "report.md"
    md_path.write_text("\n".join(markdown) + "\n")
    page = _TEMPLATES.get_template("report.html").render(
        title=title, intro=intro, summary_table=table.to_html(index=False, escape=True),
        parameter_table=param_table.to_html(index=False, escape=True), benchmarks_intro=BENCHMARKS_INTRO,
        figures=[{"name": name, "base64": base64.b64encode((folder / name).read_bytes()).decode()} for name in figures],
        machines=[{"name": machine, "run_id": run.info.run_id, "table": table.to_html(index=False, escape=True)}
                  for machine, run, table in machines])
    html_path = folder / "report.html"
    html_path.write_text(page)
    return md_path, html_path


def write_report(parent_run_id: str | None, output_dir: Path) -> Path:
    parent = find_parent(parent_run_id)
    runs, histories = read_comparison(parent)
    if runs.empty:
        raise ReportError(f"comparison {parent.info.run_id} has no child runs")
    folder = output_dir / parent.info.run_id
    labels = COMPANY_LABELS if parent.data.params.get("dataset", "companies") == "companies" else None
    summary = write_comparison(runs, histories, labels, folder)
    _, html_path = render(parent, summary, folder)
    mlflow.MlflowClient().log_artifacts(parent.info.run_id, str(folder), artifact_path="report")
    # Under `mlflow run . -e report` MLflow made a run for this entry point: give it the report too.
    launching = os.environ.get("MLFLOW_RUN_ID")
    if launching and launching != parent.info.run_id:
        mlflow.MlflowClient().log_artifacts(launching, str(folder), artifact_path="report")
        mlflow.MlflowClient().set_tag(launching, "lstm_bench.report_of", parent.info.run_id)
    return html_path


@dataclass(frozen=True)
class ReportConfig:
    parent_run_id: str = parameter("", "the comparison's parent run; empty means the latest comparison", text,
                                   allowed="a comparison's parent run id; empty: the latest comparison")
    output_dir: str = parameter("reports", "local folder for the report", text,
                                allowed="local folder; the report goes to `<output_dir>/<parent run id>/`")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlflow_project.report",
                                     description="Write a report (Markdown and single-file HTML) of a finished "
                                                 "comparison, from the tracking store in MLFLOW_TRACKING_URI.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    config = parse_config(ReportConfig, raw_arguments(add_arguments(parser, ReportConfig).parse_args(argv),
                                                      ReportConfig))
    unreachable = tracking_store_problem()
    if unreachable:
        return refuse(unreachable, fail_run=False)  # the same one-line error and status 2 as every entry point
    try:
        path = write_report(config.parent_run_id or None, Path(config.output_dir or "reports"))
    except ReportError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_NOT_FOUND
    except mlflow.exceptions.MlflowException as error:
        return refuse_if_refused(error)
    print(f"Report written: {path} (and {path.with_suffix('.md')}); logged to the comparison run as 'report/'")
    return 0


if __name__ == "__main__":
    sys.exit(main())
