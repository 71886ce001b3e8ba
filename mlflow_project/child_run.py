"""One child run: train one implementation from one seed, and log everything it produced to MLflow."""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass, field

import lightning as L
import mlflow
from lightning.pytorch.utilities.exceptions import SIGTERMException

from lstm_models import label_of
from lstm_models.training import LSTMRegressor

from .comparison import epochs_to_converge
from .cli import as_params
from .config import TrainConfig
from .datasets import example_input, log_dataset
from .environment import environment_tags
from .interruption import Interrupted
from .metrics_logger import MlflowEpochLogger
from .model_logging import log_regressor
from .training_guards import NonFiniteLoss, StopOnSignal, finite_loss_guard, non_finite_loss


def child_name(label: str, seed: int) -> str:
    """A child run's name: the implementation's label and the seed (``scratch-seed1``)."""
    return f"{label}-seed{seed}"


def run_name(spec: str, seed: int) -> str:
    """The name of the child run that trains the implementation ``spec`` from ``seed``."""
    return child_name(label_of(spec), seed)


@dataclass
class ChildResult:
    impl: str  # the implementation's label
    seed: int
    run_id: str
    status: str = "FINISHED"
    finals: dict[str, float] = field(default_factory=dict)
    history: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    model_uri: str = ""
    reason: str = ""  # why the run did not finish, for the console and runs.csv
    conformance: str = ""  # lstm_models.check's verdict for the implementation: passed or failed


def device_of(config: TrainConfig) -> str:
    import torch

    wants_gpu = config.accelerator in ("gpu", "cuda") or (config.accelerator == "auto" and torch.cuda.is_available())
    return "cuda" if wants_gpu else "cpu"


def make_trainer(config: TrainConfig, logger, progress_bar: bool) -> L.Trainer:
    return L.Trainer(max_epochs=config.max_epochs, accelerator=config.accelerator, strategy=config.strategy,
                     devices=int(config.devices) if config.devices.isdigit() else config.devices,
                     logger=logger, enable_checkpointing=False, enable_model_summary=False,
                     enable_progress_bar=progress_bar, num_sanity_val_steps=0, log_every_n_steps=1,
                     callbacks=[finite_loss_guard(config.max_epochs), StopOnSignal()])


def epochs_trained(epoch_logger: MlflowEpochLogger) -> float:
    return float(len(epoch_logger.history.get("train_loss", [])))


def final_metrics(config: TrainConfig, model: LSTMRegressor, datamodule, epoch_logger: MlflowEpochLogger,
                  seconds: float, steps: int) -> dict[str, float]:
    finals = {"training_seconds": seconds, "steps_per_second": steps / seconds if seconds > 0 else 0.0,
              "epochs_trained": epochs_trained(epoch_logger)}
    for name in ("train_loss", "val_loss"):
        if epoch_logger.last(name) is not None:
            finals[f"final_{name}"] = epoch_logger.last(name)
    probes = getattr(datamodule, "probes", None) or {}
    if probes:
        for name, value in model.predict_probes(probes).items():
            finals[f"final_prediction_{name}"] = value
        predictions = {name: epoch_logger.history.get(f"prediction_{name}", []) for name in probes}
        converged = epochs_to_converge(predictions, datamodule.labels)
        # -1 says "never within tolerance" and keeps the metric numeric for MLflow's charts.
        finals["epochs_to_converge"] = float(converged) if converged is not None else -1.0
    return finals


def seeded_model(config: TrainConfig, impl: str, seed: int) -> LSTMRegressor:
    L.seed_everything(seed, verbose=False)
    return LSTMRegressor(impl, input_size=1, hidden_size=config.hidden_size, num_layers=config.num_layers,
                         lr=config.lr, init=config.init)


def is_distributed_replica() -> bool:
    """Whether this process is one of the extra ranks Lightning's ``ddp`` strategy started (it re-runs the
    command line with LOCAL_RANK etc. set). Rank 0 alone talks to MLflow."""
    from lightning.pytorch.utilities import rank_zero_only

    return getattr(rank_zero_only, "rank", 0) != 0


def train_replicas(config: TrainConfig, datamodule) -> None:
    """On a rank other than 0: the same fits, in the same order, as rank 0 runs (DDP needs every rank in each),
    with no logging at all."""
    for impl, seed in config.runs:
        model = seeded_model(config, impl, seed)
        # A loss that stops being finite stops every rank in the same epoch (it is synchronised): rank 0 ends its
        # run FAILED and goes on to the next run, as this rank does.
        make_trainer(config, logger=False, progress_bar=False).fit(model, datamodule)


def train_child(config: TrainConfig, impl: str, seed: int, datamodule, dataset, progress_bar: bool,
                parent: mlflow.entities.Run, run_id: str | None = None) -> ChildResult:
    """Train the implementation spec ``impl`` from ``seed`` in a run nested under ``parent`` and log params, tags,
    metrics, dataset and model, in the run ``run_id`` when the caller created it already, else in a new one. The
    parent is named explicitly: in a worker process MLflow's stack of active runs starts empty.

    A loss that stops being finite ends this run FAILED (tags say why and when) and returns, so the comparison
    goes on; an interruption ends it KILLED and propagates; any other error ends it FAILED and propagates.
    Metrics logged before any of these stay logged.
    """
    device = device_of(config)
    if run_id is None:
        run = mlflow.start_run(run_name=run_name(impl, seed), nested=True, parent_run_id=parent.info.run_id,
                               experiment_id=parent.info.experiment_id, log_system_metrics=config.system_metrics or None)
    else:
        run = mlflow.start_run(run_id=run_id, nested=True, log_system_metrics=config.system_metrics or None)
    result = ChildResult(label_of(impl), seed, run.info.run_id)
    epoch_logger = MlflowEpochLogger(run.info.run_id)
    start = time.perf_counter()
    try:
        mlflow.log_params({**as_params(config), "impl": label_of(impl), "impl_spec": impl, "seed": str(seed)})
        mlflow.set_tags({**environment_tags(device), "lstm_bench.role": "training", "lstm_bench.impl": label_of(impl)})
        log_dataset(dataset, context="training")
        model = seeded_model(config, impl, seed)
        trainer = make_trainer(config, epoch_logger, progress_bar)
        start = time.perf_counter()
        trainer.fit(model, datamodule)
        seconds = time.perf_counter() - start
        stopped = non_finite_loss(trainer)
        if stopped is not None:
            raise stopped
        result.history = epoch_logger.history
        result.finals = final_metrics(config, model, datamodule, epoch_logger, seconds, trainer.global_step)
        mlflow.log_metrics(result.finals)
        result.model_uri, _ = log_regressor(model, example_input(datamodule), name=run_name(impl, seed))
        mlflow.set_tag("lstm_bench.model_uri", result.model_uri)
    except NonFiniteLoss as failure:
        _end_unfinished(result, epoch_logger, start, "FAILED",
                        {"lstm_bench.failure": str(failure), "lstm_bench.failed_epoch": str(failure.epoch)})
        return result
    except (Interrupted, SIGTERMException) as stop:
        # Lightning's own SIGTERM handler sets a flag that its loop checks at the end of every batch. When our
        # handler's exception is lost (see interruption), that check can come before StopOnSignal's, and then
        # Lightning raises SIGTERMException: the same signal, to be answered the same way.
        interruption = stop if isinstance(stop, Interrupted) else Interrupted(signal.SIGTERM)
        _end_unfinished(result, epoch_logger, start, "KILLED", {"lstm_bench.interrupted_by": str(interruption)})
        if interruption is stop:
            raise
        raise interruption from stop
    except BaseException as error:
        _end_unfinished(result, epoch_logger, start, "FAILED",
                        {"lstm_bench.error": f"{type(error).__name__}: {error}"[:5000]})
        raise
    mlflow.end_run("FINISHED")
    return result


def _end_unfinished(result: ChildResult, epoch_logger: MlflowEpochLogger, start: float, status: str,
                    tags: dict[str, str]) -> None:
    """Write what is buffered, say why the run stopped, and end it with ``status``."""
    result.status = status
    result.reason = next(iter(tags.values()))
    result.history = epoch_logger.history
    seconds = time.perf_counter() - start
    result.finals = {"training_seconds": seconds, "epochs_trained": epochs_trained(epoch_logger)}
    epoch_logger.flush()
    mlflow.log_metrics(result.finals)
    mlflow.set_tags(tags)
    mlflow.end_run(status)
