"""Entry point ``main``: train every chosen implementation over seeds and compare them in MLflow.

    python -m mlflow_project.train --impls native,scratch --seeds 0,1 --max-epochs 300

The project run is the parent (under ``mlflow run .`` it is the run MLflow created); each (implementation, seed)
is a nested child run. The parent gets the summary table, the equivalence measure against ``native`` and the
overlay figures. Every parameter is checked before any run starts; a bad one exits with status 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from dataclasses import fields
from pathlib import Path

from .config import ConfigError, TrainConfig, build_config
from .interruption import Interrupted, raise_on_signals
from .tracking_store import limit_http_retries, tracking_store_problem

EXIT_BAD_PARAMETER = 2

HELP = {
    "impls": "comma-separated implementations, or 'all' (registered: {impls})",
    "seeds": "comma-separated seeds; each implementation trains once per seed",
    "dataset": "'companies' (the tutorial's toy data), 'sunspots' (shipped yearly series), or a CSV file path",
    "max_epochs": "epochs per training run",
    "lr": "Adam learning rate",
    "hidden_size": "LSTM hidden size (1 reproduces the tutorial: the prediction is the short-term memory)",
    "num_layers": "stacked LSTM layers",
    "batch_size": "sequences per optimizer step",
    "init": "starting weights: 'lstm' (nn.LSTM's uniform draw) or 'statquest' (the tutorial's N(0,1), zero bias)",
    "accelerator": "Lightning accelerator: cpu, gpu, cuda or auto",
    "devices": "Lightning devices: a count or 'auto'",
    "strategy": "Lightning strategy: auto, ddp, ddp_spawn, ...",
    "window": "past values per input sequence (sunspots and CSV data)",
    "column": "CSV column holding the series (default: the last column)",
    "val_fraction": "last fraction of the series' windows kept for validation (sunspots and CSV data)",
    "workers": "children trained at once, each in its own process: a count, or 'auto' (one per CPU core when "
               "training on one CPU device, else 1)",
}


def build_parser() -> argparse.ArgumentParser:
    from lstm_models import IMPLEMENTATIONS

    parser = argparse.ArgumentParser(
        prog="python -m mlflow_project.train",
        description="Train LSTM implementations over seeds and compare them in MLflow (parent run + one child "
                    "run per implementation and seed). Tracking goes to MLFLOW_TRACKING_URI, by default "
                    "sqlite:///mlflow.db in the current directory.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    defaults = TrainConfig()
    for spec in fields(TrainConfig):
        default = getattr(defaults, spec.name)
        if isinstance(default, tuple):
            default = ",".join(map(str, default))
        if spec.name == "impls":
            default = "all"
        parser.add_argument(f"--{spec.name.replace('_', '-')}", dest=spec.name, default=str(default),
                            metavar=spec.name.upper(), help=HELP[spec.name].format(impls=", ".join(IMPLEMENTATIONS)))
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


def fail_launching_run(message: str) -> None:
    """Under ``mlflow run`` the parent run already exists: end it FAILED, with the reason, before exiting."""
    run_id = os.environ.get("MLFLOW_RUN_ID")
    if not run_id:
        return
    from mlflow import MlflowClient

    client = MlflowClient()
    client.set_tag(run_id, "lstm_bench.error", message)
    client.set_terminated(run_id, status="FAILED")


def refuse(error: Exception, fail_run: bool = True) -> int:
    """A bad parameter (or an unreachable store): one line on stderr, the launching run FAILED, status 2."""
    print(f"error: {error}", file=sys.stderr)
    if fail_run:
        fail_launching_run(str(error))
    return EXIT_BAD_PARAMETER


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    raw = {spec.name: getattr(args, spec.name) for spec in fields(TrainConfig)}
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
    except Interrupted as interruption:
        print(f"\ninterrupted by {interruption}: the comparison and its unfinished runs ended KILLED; "
              "everything logged so far is kept", file=sys.stderr)
        return interruption.exit_status
    return 0


if __name__ == "__main__":
    sys.exit(main())
