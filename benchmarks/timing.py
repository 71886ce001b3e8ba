"""Honest timing helpers: one seeded set of weights and inputs, the passes as callables, CUDA synchronised.

Every implementation of a (device, shape) is built from the same ``torch.manual_seed`` and then loads
``nn.LSTM``'s state dict, and gets the same inputs from ``lstm_inputs``: the only thing that differs between
two results in one benchmark group is the implementation.
"""

from __future__ import annotations

import time
from functools import lru_cache

import torch

from lstm_models import ImplementationUnavailable, SpecError, build_lstm, label_of, lstm_inputs
from lstm_models.check import conformance, first_failure
from lstm_models.core.parity import ParityCase, build_like_native, max_differences

from lstm_models.benchmarking.grid import Shape


def build_for(impl: str, shape: Shape, device: str, dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    """``impl`` with nn.LSTM's seeded weights."""
    torch.manual_seed(0)
    sizes = dict(input_size=shape.input_size, hidden_size=shape.hidden_size, num_layers=shape.num_layers)
    native = build_lstm("native", **sizes, dtype=dtype, device=device)
    if impl == "native":
        return native
    return build_like_native(native, impl, **sizes)


class NotTimed(Exception):
    """An implementation that is not timed here: it differs from nn.LSTM, or cannot run on this machine; ``str()``
    says why in one line, naming the failing case."""


@lru_cache(maxsize=None)
def conformance_failure(impl: str) -> str | None:
    """Why ``impl`` must not be timed, after ``lstm_models.check`` (once per process), or None."""
    try:
        failure = first_failure(conformance(impl))
    except (SpecError, ImplementationUnavailable) as error:
        return str(error)
    if failure is None:
        return None
    return f"{label_of(impl)} differs from nn.LSTM ({failure.name}: {failure.detail}); not timed"


def check_parity_before_timing(impl: str, shape: Shape, device: str) -> None:
    """Correctness before speed: the conformance checks, then the same sizes as ``shape`` on a short, small batch,
    in float64, against nn.LSTM. Raises NotTimed when either fails."""
    failure = conformance_failure(impl)
    if failure is not None:
        raise NotTimed(failure)
    case = ParityCase(f"pre-benchmark-{shape.name}", seq_len=min(shape.seq_len, 5), batch=min(shape.batch, 2),
                      input_size=shape.input_size, hidden_size=shape.hidden_size, num_layers=shape.num_layers,
                      initial_state=True)
    worst = max(max_differences(impl, case, dtype=torch.float64, device=device).values())
    if not worst < 1e-10:
        raise NotTimed(f"{label_of(impl)} differs from nn.LSTM by {worst:.3e} in float64 at {shape.name}; not timed")


def checked_passes(impl: str, shape: Shape, device: str) -> Passes:
    """``impl``'s timed passes at ``shape``, once it has been checked against nn.LSTM (``check_parity_before_timing``).
    ``check_s`` on the result is how long the checks took: the first check of an implementation in a process is also
    its first call, where ``compiled`` compiles."""
    started = time.perf_counter()
    check_parity_before_timing(impl, shape, device)
    checked = time.perf_counter() - started
    passes = Passes(build_for(impl, shape, device), shape, device)
    passes.check_s = checked
    return passes


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


class Passes:
    """The three timed passes on one module and one seeded input set."""

    def __init__(self, module: torch.nn.Module, shape: Shape, device: str):
        self.module, self.device = module, device
        x, (h0, c0) = lstm_inputs(shape.seq_len, shape.batch, shape.input_size, shape.hidden_size,
                                  shape.num_layers, seed=0, device=device)
        self.x = x.requires_grad_()  # (T, B, I): the gradient of the input is part of the backward's work
        self.state = (h0, c0)  # (L, B, H)
        generator = torch.Generator().manual_seed(1)
        self.grad_output = torch.randn(shape.seq_len, shape.batch, shape.hidden_size,
                                       generator=generator).to(device)  # (T, B, H)
        self.output = None
        self.check_s = float("nan")  # set by checked_passes

    def first_call(self, pass_name: str) -> float:
        """Seconds of one untimed call of the pass, made before any other: what a first call costs."""
        started = time.perf_counter()
        if pass_name == "backward":
            self.prepare_backward()
        getattr(self, pass_name)()
        return time.perf_counter() - started

    def clear_grads(self) -> None:
        self.x.grad = None
        for param in self.module.parameters():
            param.grad = None

    def forward(self) -> None:
        """The forward half of a training step (autograd records the graph, as in training)."""
        self.output, _ = self.module(self.x, self.state)
        synchronize(self.device)

    def prepare_backward(self):
        """pytest-benchmark setup: a fresh forward graph, built outside the timed region."""
        self.clear_grads()
        self.output, _ = self.module(self.x, self.state)
        synchronize(self.device)
        return (), {}

    def backward(self) -> None:
        self.output.backward(self.grad_output)
        synchronize(self.device)

    def forward_backward(self) -> None:
        self.clear_grads()
        self.training_step()
        synchronize(self.device)

    def training_step(self) -> None:
        """Forward and backward with no synchronisation and no clearing: the part a CUDA graph can capture.

        The gradients accumulate into whatever ``.grad`` tensors exist, as in a training loop without zeroing."""
        self.output, _ = self.module(self.x, self.state)
        self.output.backward(self.grad_output)

    def check_results(self) -> None:
        """After timing: outputs finite, and every gradient present and finite."""
        assert self.output is not None and torch.isfinite(self.output).all()

    def check_gradients(self) -> None:
        assert self.x.grad is not None and torch.isfinite(self.x.grad).all()
        for name, param in self.module.named_parameters():
            assert param.grad is not None and torch.isfinite(param.grad).all(), name
