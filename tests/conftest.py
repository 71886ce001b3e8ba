"""Shared fixtures: real MLflow stores (sqlite in a temporary folder) and a real `mlflow server` on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent

# Marks for a test that needs a GPU: selectable with ``-m cuda`` and skipped, with the reason, where there is none.
CUDA_MARKS = (pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available on this machine"))
# The devices a test runs on, CUDA marked as above.
DEVICES = ("cpu", pytest.param("cuda", marks=CUDA_MARKS))


def needs_cuda(test):
    """Decorator form of CUDA_MARKS."""
    for mark in CUDA_MARKS:
        test = mark(test)
    return test


def project_env(tracking_uri: str, **extra: str) -> dict[str, str]:
    """The environment for a subprocess: this interpreter's folder first on PATH (the MLproject runs `python`),
    the repository importable, and the given tracking URI."""
    env = dict(os.environ)
    env.pop("MLFLOW_RUN_ID", None)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = f"{REPO}{os.pathsep}{env.get('PYTHONPATH', '')}".rstrip(os.pathsep)
    env["MLFLOW_TRACKING_URI"] = tracking_uri
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run_cli(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def printed_by_fresh_process(module: str, function: str, **env: str) -> str:
    """What ``lstm_models.core.<module>.<function>()`` returns in a new interpreter with ``env`` added to this one's
    environment: how a switch read from an environment variable at import is set."""
    code = f"from lstm_models.core import {module}; print({module}.{function}())"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env={**os.environ, **env})
    return result.stdout.strip()


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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MlflowServer:
    """An `mlflow server` process on 127.0.0.1 with a sqlite backend and served artifacts."""

    def __init__(self, folder: Path, backend_store_uri: str | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = folder / "server.log"
        command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(self.port),
                   "--backend-store-uri", backend_store_uri or f"sqlite:///{folder / 'server.db'}",
                   "--serve-artifacts", "--artifacts-destination", str(folder / "server-artifacts"),
                   "--workers", "1"]
        self.process = subprocess.Popen(command, stdout=self.log.open("w"), stderr=subprocess.STDOUT,
                                        cwd=folder, start_new_session=True)

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        raise TimeoutError(f"mlflow server not ready in {timeout} s: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait()


@pytest.fixture
def mlflow_server(tmp_path):
    server = MlflowServer(tmp_path)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
