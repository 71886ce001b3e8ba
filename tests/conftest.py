"""Shared fixtures: real MLflow stores (sqlite in a temporary folder) and a real `mlflow server` on 127.0.0.1.
Shared helpers live in tests/helpers.py."""

from __future__ import annotations

import pytest

from tests.helpers import MlflowServer


@pytest.fixture
def sqlite_store(tmp_path, monkeypatch):
    """A fresh sqlite tracking store in a temporary folder, set for this process and its children."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    import mlflow

    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(None)


@pytest.fixture
def mlflow_server(tmp_path):
    server = MlflowServer(tmp_path)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(params=("fused", "plain"))
def cpu_loops(request):
    """scratch_fast's CPU loops, once compiled and once plain PyTorch (lstm_models/core/scratch_fast/fused_steps.py):
    both paths stay tested. The compiled one must build here; where it cannot, its tests fail and say why."""
    from lstm_models.core.scratch_fast import fused_steps

    fused_steps.set_enabled(request.param == "fused")
    assert fused_steps.path() == request.param, fused_steps.problem()
    yield request.param
    fused_steps.set_enabled(True)
