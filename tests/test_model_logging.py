"""A logged model on a machine whose pyfunc default is CUDA: MLflow's check of the input example passes at logging
time, and the model loads where the README's example asks for the CPU.

MLflow's pyfunc loader takes CUDA as the default device wherever CUDA is available, and refuses to load a ``pt2``
model exported on the CPU there. On a CPU-only machine the same default is reached by setting
``MLFLOW_DEFAULT_PREDICTION_DEVICE=cuda``, which is how these tests run without a GPU; the CUDA-marked test runs
the real thing on a GPU machine.
"""

from __future__ import annotations

import logging
import os

import mlflow
import numpy as np
import pytest
import torch
from mlflow.exceptions import MlflowException

from lstm_models.training import COMPANY_SEQUENCES, LSTMRegressor
from mlflow_project.model_logging import log_regressor
from tests.helpers import needs_cuda

pytestmark = pytest.mark.slow  # each case logs and reloads a model through a real store

COMPANIES = np.array(list(COMPANY_SEQUENCES.values()), dtype=np.float32)  # (2, 4): the tutorial's two companies
DEVICE_VARIABLE = "MLFLOW_DEFAULT_PREDICTION_DEVICE"


class _Records(logging.Handler):
    """The warnings of MLflow's model module, caught whatever its loggers' propagation is."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture
def mlflow_warnings():
    records = _Records()
    logger = logging.getLogger("mlflow.models.model")
    logger.addHandler(records)
    yield records.messages
    logger.removeHandler(records)


def _log_regressor(impl: str = "scratch_fast") -> tuple[str, torch.Tensor]:
    """Log a fresh regressor to a new run; returns its model URI and its own predictions for COMPANIES."""
    torch.manual_seed(0)
    model = LSTMRegressor(impl=impl).eval()
    with torch.no_grad():
        expected = model(torch.from_numpy(COMPANIES))
    with mlflow.start_run():
        uri, fmt = log_regressor(model, COMPANIES)
    assert fmt == "pt2"
    return uri, expected


def _failed_validations(messages: list[str]) -> list[str]:
    return [m for m in messages if "Failed to validate serving input example" in m]


def test_input_example_validates_where_the_pyfunc_default_is_cuda(sqlite_store, monkeypatch, mlflow_warnings):
    monkeypatch.setenv(DEVICE_VARIABLE, "cuda")
    _log_regressor()
    assert _failed_validations(mlflow_warnings) == []
    assert os.environ[DEVICE_VARIABLE] == "cuda"  # the caller's setting is back after the log call


def test_logging_leaves_the_variable_unset_when_it_was(sqlite_store, monkeypatch):
    monkeypatch.delenv(DEVICE_VARIABLE, raising=False)
    _log_regressor("native")
    assert DEVICE_VARIABLE not in os.environ


def test_model_loads_on_the_cpu_asked_for_where_the_default_is_cuda(sqlite_store, monkeypatch):
    uri, expected = _log_regressor()
    monkeypatch.setenv(DEVICE_VARIABLE, "cuda")
    # What the README's example does, and why it does it: the default device refuses the CPU-exported model.
    with pytest.raises(MlflowException, match="can't be loaded on 'cuda' device"):
        mlflow.pyfunc.load_model(uri)
    model = mlflow.pyfunc.load_model(uri, model_config={"device": "cpu"})
    predictions = np.asarray(model.predict(COMPANIES)).reshape(-1)
    np.testing.assert_allclose(predictions, expected.numpy(), rtol=0, atol=1e-6)


@needs_cuda
def test_on_a_gpu_machine_the_model_logs_and_loads(sqlite_store, monkeypatch, mlflow_warnings):
    monkeypatch.delenv(DEVICE_VARIABLE, raising=False)  # MLflow's own default: CUDA, since it is available
    uri, expected = _log_regressor()
    assert _failed_validations(mlflow_warnings) == []
    model = mlflow.pyfunc.load_model(uri, model_config={"device": "cpu"})
    predictions = np.asarray(model.predict(COMPANIES)).reshape(-1)
    np.testing.assert_allclose(predictions, expected.numpy(), rtol=0, atol=1e-6)
