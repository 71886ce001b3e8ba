"""How much does tracking cost? Time the same training with and without MLflow logging.

    python -m mlflow_project.overhead --impl native --max-epochs 300 --repeats 3

"Tracking off" is ``Trainer.fit`` with no logger; "tracking on" is the same fit inside an MLflow run with the
epoch logger the comparison uses (metrics written in batches). Both start from the same seed. The median of
``--repeats`` alternating pairs is reported, with the ratio on/off. By default the store is a temporary sqlite
file; set MLFLOW_TRACKING_URI to measure against a server.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import mlflow

from lstm_models.training import CompaniesDataModule

from .child_run import make_trainer, seeded_model
from .config import TrainConfig
from .metrics_logger import MlflowEpochLogger
from .train import quiet_lightning


def _fit_seconds(config: TrainConfig, impl: str, logger) -> float:
    """One fit with the comparison's own model and trainer settings; ``logger`` False means tracking off."""
    model = seeded_model(config, impl, seed=0)
    trainer = make_trainer(config, logger, progress_bar=False)
    start = time.perf_counter()
    trainer.fit(model, CompaniesDataModule())
    return time.perf_counter() - start


def measure(impl: str, max_epochs: int, repeats: int) -> tuple[float, float]:
    """Median seconds of (tracking off, tracking on) over ``repeats`` alternating pairs."""
    config = TrainConfig(max_epochs=max_epochs)
    off, on = [], []
    _fit_seconds(TrainConfig(max_epochs=2), impl, False)  # warm-up: first-call costs belong to neither side
    for _ in range(repeats):
        off.append(_fit_seconds(config, impl, False))
        with mlflow.start_run(run_name=f"overhead-{impl}") as run:
            on.append(_fit_seconds(config, impl, MlflowEpochLogger(run.info.run_id)))
    return statistics.median(off), statistics.median(on)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlflow_project.overhead", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--impl", default="native", help="registered implementation to train")
    parser.add_argument("--max-epochs", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    quiet_lightning()
    with tempfile.TemporaryDirectory() as folder:
        if "MLFLOW_TRACKING_URI" not in os.environ:
            mlflow.set_tracking_uri(f"sqlite:///{folder}/overhead.db")
        off, on = measure(args.impl, args.max_epochs, args.repeats)
    print(f"{args.impl}, {args.max_epochs} epochs on companies, median of {args.repeats}: "
          f"tracking off {off:.3f} s, tracking on {on:.3f} s, ratio {on / off:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
