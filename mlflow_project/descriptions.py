"""What a comparison's runs say of themselves in the MLflow UI: their Description (``mlflow.note.content``).

The parent's holds the summary table and names the figures, so that opening the comparison shows the answer; each
child's says what it is (implementation, seed, dataset) and its implementation's verdict.
"""

from __future__ import annotations

import mlflow
import pandas as pd
from mlflow.utils.mlflow_tags import MLFLOW_RUN_NOTE

from .comparison import display_table, markdown_table


def parent_note(summary: pd.DataFrame, dataset: str, figures: list[str]) -> str:
    shown = ", ".join(f"`comparison/{name}`" for name in figures)
    return (f"**{len(summary)} implementations compared with `nn.LSTM` on {dataset}**, over seeds (mean ± std; "
            "*converged*: both predictions within 0.05 of their labels).\n\n"
            f"{markdown_table(display_table(summary))}\n\n"
            f"Figures, under Artifacts: {shown}. Each child run is one implementation trained from one seed; tick "
            "them in the runs list and press **Compare** to overlay their curves.")


def child_note(label: str, spec: str, seed: int, dataset: str, status: str, verdict: str, conformance: str) -> str:
    shown_spec = "" if spec == label else f" (`{spec}`)"
    return (f"**{label}**{shown_spec} trained from seed {seed} on {dataset}: run {status.lower()}. Verdict for "
            f"{label} over all seeds: {verdict}. Conformance to `nn.LSTM` (`conformance.md`): {conformance or '-'}.")


def describe(parent_id: str, summary: pd.DataFrame, results, specs: dict[str, str], dataset: str,
             figures: list[str]) -> None:
    """Write the parent's and every child's description."""
    client = mlflow.MlflowClient()
    client.set_tag(parent_id, MLFLOW_RUN_NOTE, parent_note(summary, dataset, figures))
    verdicts = dict(zip(summary["impl"], summary["verdict"]))
    for result in results:
        client.set_tag(result.run_id, MLFLOW_RUN_NOTE, child_note(
            result.impl, specs[result.impl], result.seed, dataset, result.status, verdicts.get(result.impl, "-"),
            result.conformance))
