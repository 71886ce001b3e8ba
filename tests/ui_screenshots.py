"""The README's pictures of the MLflow UI, made with the browser the UI test uses.

    python -m tests.ui_screenshots [--out docs/images]

Runs the default comparison (``mlflow run . --env-manager local``) into a new store in a temporary folder, opens
``mlflow ui`` over it, and saves the parent run's page and its loss-curve artifact as PNG files.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import mlflow

from tests.helpers import REPO, MlflowServer, browse, chromium, project_env, run_cli


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.ui_screenshots", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images")
    args = parser.parse_args(argv)
    if chromium() is None:
        parser.error("no Chromium on PATH (apt-get install chromium)")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        uri = f"sqlite:///{folder / 'mlflow.db'}"
        print("running the default comparison (about a minute)...", flush=True)
        done = run_cli(["-m", "mlflow", "run", str(REPO), "--env-manager", "local"], project_env(uri), cwd=folder)
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            return 1
        (parent,) = mlflow.MlflowClient(uri).search_runs(
            [experiment.experiment_id for experiment in mlflow.MlflowClient(uri).search_experiments()],
            filter_string="tags.`lstm_bench.role` = 'comparison'")
        ui = MlflowServer(folder, backend_store_uri=uri, ui=True)
        try:
            ui.wait_ready()
            run_page = f"{ui.url}/#/experiments/{parent.info.experiment_id}/runs/{parent.info.run_id}"
            browse(f"{run_page}?workflowType=machine_learning", screenshot=args.out / "comparison_run.png")
            browse(f"{run_page}/artifacts/comparison/loss_curves.png?workflowType=machine_learning",
                   screenshot=args.out / "comparison_loss_curves.png")
        finally:
            ui.stop()
    print(f"written: {args.out / 'comparison_run.png'}, {args.out / 'comparison_loss_curves.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
