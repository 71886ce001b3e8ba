"""Entry point ``main``: train every chosen implementation over seeds and compare them in MLflow.

    python -m mlflow_project.train --impls native,scratch --seeds 0,1 --max-epochs 300

The project run is the parent (under ``mlflow run .`` it is the run MLflow created); each (implementation, seed)
is a nested child run. The parent gets the summary table, the equivalence measure against ``native`` and the
overlay figures. Every parameter is checked before any run starts; a bad one exits with status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path

from mlflow.exceptions import MlflowException

from .cli import ConfigError, add_arguments, raw_arguments, refuse, refuse_if_refused
from .config import TrainConfig, build_config
from .interruption import Interrupted, raise_on_signals
from .tracking_store import limit_http_retries, tracking_store_problem


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mlflow_project.train",
        description="Train LSTM implementations over seeds and compare them in MLflow (parent run + one child "
                    "run per implementation and seed). Tracking goes to MLFLOW_TRACKING_URI, by default "
                    "sqlite:///mlflow.db in the current directory.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_arguments(parser, TrainConfig)
    parser.add_argument("--progress-bar", choices=("auto", "on", "off"), default="auto",
                        help="Lightning's progress bar; 'auto' shows it when stderr is a terminal")
    parser.add_argument("--output-dir", default="", help="also write the summary and figures to this folder")
    return parser


def quiet_lightning() -> None:
    """Keep the console for progress and results: Lightning's banners and data-loader hints say nothing here."""
    import lightning  # noqa: F401  (importing it sets its loggers' levels, so import first, then override)

    # The rank_zero loggers by name: importing pytorch_lightning later (MLflow's pytorch flavour does) resets the
    # package loggers' levels, but not those of their children.
    for package in ("lightning.pytorch", "lightning.fabric", "pytorch_lightning", "lightning_fabric"):
        for name in (package, f"{package}.utilities.rank_zero"):
            logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*You defined a `validation_step` but have no `val_dataloader`.*")
    warnings.filterwarnings("ignore", message=".*number of training batches.*smaller than the logging interval.*")
    # nn.LSTM keeps a flat copy of its weights that torch.export warns about; the exported graph is correct
    # (the model-reload test checks its predictions).
    warnings.filterwarnings("ignore", message=".*_flat_weights.*were assigned during export.*")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    raw = raw_arguments(args, TrainConfig)
    limit_http_retries()
    try:
        config = build_config(raw)
        from .datasets import make_datamodule

        datamodule = make_datamodule(config)
    except ConfigError as error:
        return refuse(error)
    unreachable = tracking_store_problem()
    if unreachable:
        return refuse(unreachable, fail_run=False)  # the run cannot be reached to be marked
    progress_bar = args.progress_bar == "on" or (args.progress_bar == "auto" and sys.stderr.isatty())
    quiet_lightning()
    from .comparison_run import run_comparison

    from .child_run import is_distributed_replica, train_replicas

    if is_distributed_replica():
        train_replicas(config, datamodule)
        return 0
    raise_on_signals()
    try:
        run_comparison(config, raw, datamodule, progress_bar=progress_bar,
                       output_dir=Path(args.output_dir) if args.output_dir else None)
    except MlflowException as error:
        return refuse_if_refused(error)
    except Interrupted as interruption:
        print(f"\ninterrupted by {interruption}: the comparison and its unfinished runs ended KILLED; "
              "everything logged so far is kept", file=sys.stderr)
        return interruption.exit_status
    return 0


if __name__ == "__main__":
    sys.exit(main())
