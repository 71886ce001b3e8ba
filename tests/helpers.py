"""What the tests share: paths, CUDA marks, subprocess environments, a real `mlflow server`, and the float64
comparisons and model pairs that the parity, gradcheck and scratch_fast internals tests are built from."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
import torch
from torch.func import functional_call

from lstm_models import build_lstm
from lstm_models.core.parity import PARITY_CASES, ParityCase, build_like_native, run_case

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
    """What ``lstm_models.core.scratch_fast.<module>.<function>()`` returns in a new interpreter with ``env`` added
    to this one's environment: how a switch read from an environment variable at import is set."""
    code = f"from lstm_models.core.scratch_fast import {module}; print({module}.{function}())"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env={**os.environ, **env})
    return result.stdout.strip()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MlflowServer:
    """An `mlflow server` process on 127.0.0.1 with a sqlite backend and served artifacts (or `mlflow ui`)."""

    def __init__(self, folder: Path, backend_store_uri: str | None = None, app_name: str | None = None,
                 env: dict[str, str] | None = None, ui: bool = False):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = folder / "server.log"
        store = backend_store_uri or f"sqlite:///{folder / 'server.db'}"
        if ui:  # `mlflow ui` over a store, as a user opens a comparison
            command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", store, "--host", "127.0.0.1",
                       "--port", str(self.port)]
        else:
            command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(self.port),
                       "--backend-store-uri", store, "--serve-artifacts", "--artifacts-destination",
                       str(folder / "server-artifacts"), "--workers", "1",
                       *(["--app-name", app_name] if app_name else [])]
        self.process = subprocess.Popen(command, stdout=self.log.open("w"), stderr=subprocess.STDOUT,
                                        cwd=folder, start_new_session=True, env={**os.environ, **(env or {})})

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


# --- float64 comparisons with nn.LSTM ---------------------------------------------------------------------------

# float64 keeps about 16 significant digits; sums over time steps and batch lose a few, hence 1e-13.
FLOAT64_TOLERANCE = dict(rtol=1e-11, atol=1e-13)
# On CUDA the products' summation order is cuBLAS's and cuDNN's, not MKL's: a little more rounding apart.
CUDA_FLOAT64_TOLERANCE = dict(rtol=1e-9, atol=1e-11)


def float64_tolerance(device: str) -> dict:
    return FLOAT64_TOLERANCE if device == "cpu" else CUDA_FLOAT64_TOLERANCE


def assert_same_results(got: dict, want: dict, case, tolerance: dict, device: str) -> None:
    """Every output and gradient of nn.LSTM present, on ``device``, of the same shape and within ``tolerance``."""
    assert set(got) == set(want)
    assert "grad_weight_ih_l0" in want and "grad_input" in want
    if case.initial_state:
        assert "grad_h0" in want and "grad_c0" in want
    for key in want:
        assert got[key].shape == want[key].shape and got[key].device.type == device, key
        torch.testing.assert_close(got[key], want[key], **tolerance, msg=lambda m, key=key: f"{key}: {m}")


# Two layers of one size, with an initial state: the case most scratch_fast internals tests share.
TWO_LAYERS = next(case for case in PARITY_CASES if case.name == "initial_state")


def native_and_scratch_fast(case: ParityCase, device: str):
    """nn.LSTM and scratch_fast with the same float64 weights, of ``case``'s sizes."""
    torch.manual_seed(0)
    native = build_lstm("native", **case.lstm_kwargs(), dtype=torch.float64, device=device)
    return native, build_like_native(native, "scratch_fast", **case.lstm_kwargs())


def fresh_run(module, case: ParityCase, device: str, seed: int) -> dict:
    """``run_case`` from cleared gradients: one call's outputs and gradients only."""
    module.zero_grad(set_to_none=True)
    return run_case(module, case, torch.float64, device, seed)


def float64_sequence(case: ParityCase, device: str, generator: torch.Generator | None = None) -> torch.Tensor:
    """A float64 input sequence (T, B, I) of ``case``'s sizes on ``device``."""
    return torch.randn(case.seq_len, case.batch, case.input_size, generator=generator, dtype=torch.float64).to(device)


def small_pair(seed: int = 0):
    """nn.LSTM and scratch_fast, 3 -> 4, two layers, with the same float64 weights (the pool tests' pair)."""
    torch.manual_seed(seed)
    native = build_lstm("native", 3, 4, num_layers=2, dtype=torch.float64)
    fast = build_lstm("scratch_fast", 3, 4, num_layers=2, dtype=torch.float64)
    fast.load_state_dict(native.state_dict())
    return native, fast


def small_sequences(count: int):
    """``count`` float64 sequences (6, 2, 3) for ``small_pair``."""
    generator = torch.Generator().manual_seed(1)
    return [torch.randn(6, 2, 3, generator=generator, dtype=torch.float64) for _ in range(count)]


def cell_in_plain_ops(input_gates, hidden_gates, cell):
    """What ATen's fused LSTM cell computes, in plain tensor operations: (h_t, c_t, [i, f, g, o])."""
    batch = cell.shape[0]
    z = (input_gates + hidden_gates).view(batch, 4, -1)
    activated = torch.cat([z[:, :2].sigmoid(), z[:, 2:3].tanh(), z[:, 3:].sigmoid()], dim=1)  # i, f | g | o
    in_gate, forget_gate, cell_gate, out_gate = activated.unbind(1)
    next_cell = forget_gate * cell + in_gate * cell_gate
    return out_gate * next_cell.tanh(), next_cell, activated.view(batch, -1)


# --- gradcheck of scratch_fast ------------------------------------------------------------------------------------

GRADCHECK_CASES = {
    # name: (build_lstm keyword arguments, sequence length, batch or None for unbatched input, initial state)
    "one_layer": (dict(input_size=3, hidden_size=4), 5, 2, False),
    "initial_state": (dict(input_size=3, hidden_size=4), 4, 3, True),
    "two_layers_initial_state": (dict(input_size=2, hidden_size=3, num_layers=2), 4, 2, True),
    "three_layers_no_bias": (dict(input_size=2, hidden_size=3, num_layers=3, bias=False), 3, 2, True),
    "batch_first": (dict(input_size=3, hidden_size=2, batch_first=True), 4, 2, True),
    "unbatched": (dict(input_size=3, hidden_size=4), 5, None, True),
    "one_step": (dict(input_size=1, hidden_size=1), 1, 1, True),
}


def gradcheck_inputs(kwargs: dict, seq_len: int, batch: int | None, initial_state: bool, device: str = "cpu"):
    generator = torch.Generator().manual_seed(0)

    def draw(*shape):
        return torch.randn(*shape, generator=generator, dtype=torch.float64).to(device).requires_grad_()

    layers, hidden = kwargs.get("num_layers", 1), kwargs["hidden_size"]
    if batch is None:
        x, state_shape = draw(seq_len, kwargs["input_size"]), (layers, hidden)
    elif kwargs.get("batch_first"):
        x, state_shape = draw(batch, seq_len, kwargs["input_size"]), (layers, batch, hidden)
    else:
        x, state_shape = draw(seq_len, batch, kwargs["input_size"]), (layers, batch, hidden)
    state = (draw(*state_shape), draw(*state_shape)) if initial_state else ()
    return x, state



def gradcheck_scratch_fast(case: str, device: str) -> None:
    """gradcheck of scratch_fast in float64 over input, initial state and weights, for a GRADCHECK_CASES case."""
    kwargs, seq_len, batch, initial_state = GRADCHECK_CASES[case]
    torch.manual_seed(0)
    module = build_lstm("scratch_fast", **kwargs).double().to(device)
    names = [name for name, _ in module.named_parameters()]
    weights = tuple(p.detach().clone().requires_grad_() for _, p in module.named_parameters())
    x, state = gradcheck_inputs(kwargs, seq_len, batch, initial_state, device)

    def run(x, *rest):
        state_args, weight_args = rest[:len(state)], rest[len(state):]
        hx = tuple(state_args) if state_args else None
        output, (h_n, c_n) = functional_call(module, dict(zip(names, weight_args)), (x, hx))
        return output, h_n, c_n

    assert torch.autograd.gradcheck(run, (x, *state, *weights), eps=1e-6, atol=1e-8, rtol=1e-6)


def markdown_rows(text: str) -> list[list[str]]:
    """The cells of every row of the Markdown tables in ``text``, stripped of their padding."""
    return [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in text.splitlines()
            if line.strip().startswith("|")]


def all_runs(client, filter_string: str = "") -> list:
    """Every run of every experiment in the client's store (the project logs to its own named experiment)."""
    experiments = [experiment.experiment_id for experiment in client.search_experiments()]
    return client.search_runs(experiments, filter_string=filter_string)


# --- A real browser ----------------------------------------------------------------------------------------------

# As root in a sandbox, without a display; and no background connections, which this machine's closed network refuses.
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic")


def chromium() -> str | None:
    """Debian's Chromium (`.ci/run` installs it), or another Chrome on PATH; None where there is none."""
    return next(filter(None, (shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome"))),
                None)


def browse(url: str, screenshot: Path | None = None, size: tuple[int, int] = (1400, 1000),
           wait_ms: int = 20000) -> str:
    """The page's DOM once its scripts have had ``wait_ms`` of (virtual) time, or a PNG of it in ``screenshot``."""
    with tempfile.TemporaryDirectory() as profile:
        output = [f"--screenshot={screenshot}"] if screenshot else ["--dump-dom"]
        done = subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                               f"--virtual-time-budget={wait_ms}", f"--window-size={size[0]},{size[1]}", *output, url],
                              capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"chromium failed: {done.stderr[-2000:]}")
    return done.stdout
