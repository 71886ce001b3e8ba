"""A Lightning logger that writes epoch metrics into the active MLflow run, in batches.

Why not Lightning's ``MLFlowLogger(run_id=...)``: it steps metrics by optimizer step, not by epoch (the comparison's
curves are per epoch, and the step counts of batch sizes differ), logs the model's hyperparameters as params that
collide with the run's (MLflow refuses a param logged twice with another spelling: ``0.1`` against ``"0.1"``), and
keeps no history for the summary. Why batches: one HTTP or sqlite round trip per metric would cost more than
the toy model's training step. Metrics are buffered and written with ``log_batch`` at most every
``flush_seconds`` and whenever training ends, also by an exception, so a failure loses nothing already computed.
"""

from __future__ import annotations

import time

from lightning.pytorch.loggers import Logger
from mlflow import MlflowClient
from mlflow.entities import Metric

# MLflow accepts at most 1000 metrics in one log_batch call.
BATCH_LIMIT = 1000


class MlflowEpochLogger(Logger):
    """Epoch-level metrics -> MLflow metrics with ``step`` = epoch number (1 = after the first epoch)."""

    def __init__(self, run_id: str, client: MlflowClient | None = None, flush_seconds: float = 5.0):
        super().__init__()
        self.run_id = run_id
        self.client = client or MlflowClient()
        self.flush_seconds = flush_seconds
        self.history: dict[str, list[tuple[int, float]]] = {}  # name -> [(epoch, value)], kept for the summary
        self._pending: list[Metric] = []
        self._last_flush = time.monotonic()

    @property
    def name(self) -> str:
        return "mlflow-epochs"

    @property
    def version(self) -> str:
        return self.run_id

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        """Parameters are logged by the entry point, once, under the MLproject's names."""

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        if "epoch" not in metrics:
            return  # step-level metrics are not logged; the comparison is per epoch
        epoch = int(metrics["epoch"]) + 1
        timestamp = int(time.time() * 1000)
        for name, value in metrics.items():
            if name == "epoch":
                continue
            value = float(value)
            self.history.setdefault(name, []).append((epoch, value))
            self._pending.append(Metric(key=name, value=value, timestamp=timestamp, step=epoch))
        if time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:BATCH_LIMIT], self._pending[BATCH_LIMIT:]
            self.client.log_batch(self.run_id, metrics=batch, synchronous=True)
        self._last_flush = time.monotonic()

    def finalize(self, status: str) -> None:
        self.flush()

    def last(self, name: str) -> float | None:
        values = self.history.get(name)
        return values[-1][1] if values else None
