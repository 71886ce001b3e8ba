"""Log a trained regressor as an MLflow model that ``mlflow.pyfunc.load_model`` can load on any machine.

The preferred format is ``pt2`` (``torch.export``): a graph, loaded without unpickling, so a model pulled from a
shared server cannot run code on the machine that loads it. The batch dimension is exported as dynamic; the
sequence length is fixed by the training data (the recurrent loop is unrolled over it when exported). Should an
implementation fail to export, the model is logged in ``pickle`` format instead and the run's
``lstm_bench.model_format`` tag says so.

A ``pt2`` model holds its weights on the device it was exported on, the CPU here, and MLflow refuses to load it
on another. But MLflow's pyfunc loader picks CUDA by default wherever CUDA is available, so on a GPU machine
``mlflow.pyfunc.load_model(uri)`` fails unless asked for the CPU: ``model_config={"device": "cpu"}`` or the
environment variable ``MLFLOW_DEFAULT_PREDICTION_DEVICE=cpu`` (the README's example passes the former). The same
default would make MLflow's check of the input example at logging time fail on a GPU machine, with only a
warning; ``log_regressor`` runs that check on the CPU, where the model will be loaded.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading

import mlflow
import numpy as np
import torch
from mlflow.models import ModelSignature
from mlflow.types import Schema, TensorSpec

logger = logging.getLogger(__name__)


def model_signature(seq_len: int) -> ModelSignature:
    """Input (B, T) float32 sequences with any batch size; output (B,) predictions."""
    return ModelSignature(inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, seq_len))]),
                          outputs=Schema([TensorSpec(np.dtype(np.float32), (-1,))]))


def pip_requirements() -> list[str]:
    # Given explicitly: MLflow's inference of requirements imports the model in a subprocess and takes seconds.
    return [f"torch=={torch.__version__.split('+')[0]}", f"mlflow=={mlflow.__version__}"]


# The environment is the process's: threads logging models at once take turns, so that one's restoring the
# variable cannot cut into another's log call. (The training job's workers are processes; this is for library use.)
_DEFAULT_DEVICE_LOCK = threading.Lock()


@contextlib.contextmanager
def _pyfunc_loads_on_cpu():
    """MLflow's environment variable for the pyfunc loader's default device, set to the CPU for the duration of a
    log call and then restored: the exported model can only be loaded there, and MLflow validates the input
    example by loading it with that default."""
    name = "MLFLOW_DEFAULT_PREDICTION_DEVICE"
    with _DEFAULT_DEVICE_LOCK:
        before = os.environ.get(name)
        os.environ[name] = "cpu"
        try:
            yield
        finally:
            if before is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = before


def log_regressor(model: torch.nn.Module, example: np.ndarray, name: str = "model") -> tuple[str, str]:
    """Log ``model`` (on the CPU, in eval mode) to the active run; returns (model_uri, format)."""
    model = model.to("cpu").eval()
    example = np.ascontiguousarray(example, dtype=np.float32)  # (B, T), B > 1 so the batch stays dynamic
    signature = model_signature(example.shape[1])
    try:
        with _pyfunc_loads_on_cpu():
            info = mlflow.pytorch.log_model(model, name=name, input_example=example, signature=signature,
                                            serialization_format="pt2", pip_requirements=pip_requirements())
        fmt = "pt2"
    except Exception as error:  # torch.export failures come as many exception types; fall back, but say so
        logger.warning("pt2 export failed (%s: %s); logging the model in pickle format",
                       type(error).__name__, str(error).splitlines()[0] if str(error) else "")
        info = mlflow.pytorch.log_model(model, name=name, signature=signature, serialization_format="pickle",
                                        pip_requirements=pip_requirements())
        fmt = "pickle"
    mlflow.set_tag("lstm_bench.model_format", fmt)
    return info.model_uri, fmt
