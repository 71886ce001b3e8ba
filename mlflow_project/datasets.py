"""The dataset parameter -> a Lightning DataModule, its MLflow dataset record, and an example input for models."""

from __future__ import annotations


import mlflow
import tenacity
import numpy as np
import pandas as pd

from lstm_models.training import (COMPANY_LABELS, COMPANY_SEQUENCES, CompaniesDataModule, CsvDataModule,
                                  SeriesError, SunspotsDataModule, sunspots_path)

from .config import ConfigError, TrainConfig


def make_datamodule(config: TrainConfig):
    """Build (and so fully check) the data before any run starts; a bad CSV is a ConfigError on ``dataset``."""
    if config.dataset == "companies":
        return CompaniesDataModule(batch_size=config.batch_size)
    try:
        if config.dataset == "sunspots":
            return SunspotsDataModule(window=config.window, val_fraction=config.val_fraction,
                                      batch_size=config.batch_size)
        return CsvDataModule(config.dataset, column=config.column or None, window=config.window,
                             val_fraction=config.val_fraction, batch_size=config.batch_size)
    except SeriesError as error:
        raise ConfigError("dataset", str(error)) from None  # the data layer's message already says where


def mlflow_dataset(datamodule):
    """The data as an MLflow dataset (for ``mlflow.log_input``): the companies, or the raw series."""
    if isinstance(datamodule, CompaniesDataModule):
        frame = pd.DataFrame([[*seq, COMPANY_LABELS[name]] for name, seq in COMPANY_SEQUENCES.items()],
                             columns=["day1", "day2", "day3", "day4", "day5"], index=list(COMPANY_SEQUENCES))
        return mlflow.data.from_pandas(frame, name="companies", targets="day5")
    path = sunspots_path() if datamodule.name == "sunspots" else datamodule.path
    frame = pd.DataFrame({"value": datamodule.series.numpy()})
    return mlflow.data.from_pandas(frame, source=str(path), name=datamodule.name)


def example_input(datamodule) -> np.ndarray:
    """A few real input sequences (B, T), B > 1, for exporting and describing logged models."""
    if isinstance(datamodule, CompaniesDataModule):
        return datamodule.inputs.numpy().astype(np.float32)
    return datamodule.windows.train_inputs[:2].numpy().astype(np.float32)


def _is_duplicate_insert(error: BaseException) -> bool:
    return isinstance(error, mlflow.exceptions.MlflowException) and (
        "UNIQUE constraint" in str(error) or "duplicate key" in str(error))


@tenacity.retry(retry=tenacity.retry_if_exception(_is_duplicate_insert), stop=tenacity.stop_after_attempt(5),
                wait=tenacity.wait_incrementing(start=0.05, increment=0.05), reraise=True)
def log_dataset(dataset, context: str) -> None:
    """``mlflow.log_input`` that survives concurrent writers.

    MLflow records a dataset once per experiment: it looks for the (name, digest) row and inserts it when absent.
    Two processes logging the same new dataset at once (parallel workers, or comparisons started together) can
    both find it absent, and the second insert then fails on the unique constraint. The row exists by then, so
    logging again links to it.
    """
    mlflow.log_input(dataset, context=context)
