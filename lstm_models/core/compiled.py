"""``compiled``: ``scratch`` with its cell under ``torch.compile``, the peer a PyTorch user would try first.

What to compile was measured (docs/scratch_fast.md, "compiled"): compiling a whole layer unrolls its time loop,
and Inductor's compile time grows with the sequence length (and recompiles for each new one); the cell is the
same small graph at every step and every length, so it compiles once per shape signature and every step reuses
it. The loop, the stack and autograd stay ``scratch``'s.

The first call compiles (tens of seconds); the benchmark suite and the comparison's runs report that first call
apart from the steady state. Where ``torch.compile`` cannot run (no C++ compiler for Inductor's CPU kernels, or
a Python that Dynamo does not support) building the module raises ``ImplementationUnavailable`` with the reason.
"""

from __future__ import annotations

import os
import shutil

import torch

from .scratch import ScratchLSTM, lstm_cell, lstm_layer


class ImplementationUnavailable(RuntimeError):
    """The implementation cannot run on this machine; ``str()`` says why in one line."""


def compile_problem() -> str | None:
    """Why ``torch.compile`` cannot run here, or None."""
    if not torch._dynamo.is_dynamo_supported():
        return "torch.compile does not support this Python or platform"
    compiler = os.environ.get("CXX", "")
    if not (shutil.which(compiler) if compiler else any(shutil.which(name) for name in ("g++", "c++", "clang++"))):
        return "torch.compile needs a C++ compiler for its CPU kernels, and none was found (set CXX or install g++)"
    return None


_compiled_cell = None


def compiled_cell():
    """``lstm_cell`` under ``torch.compile``, made once per process (Dynamo caches its graphs per shape)."""
    global _compiled_cell
    if _compiled_cell is None:
        _compiled_cell = torch.compile(lstm_cell, dynamic=True)
    return _compiled_cell


class CompiledScratchLSTM(ScratchLSTM):
    """``scratch`` whose time steps run a compiled cell."""

    implementation_name = "compiled"

    def __init__(self, *args, **kwargs):
        problem = compile_problem()
        if problem is not None:
            raise ImplementationUnavailable(f"compiled: {problem}")
        super().__init__(*args, **kwargs)

    def _run_layer(self, x, h0, c0, weights):
        # torch.export (MLflow's pt2 format) traces the plain cell: a program holds no compiled function.
        cell = lstm_cell if torch.compiler.is_exporting() else compiled_cell()
        return lstm_layer(x, h0, c0, weights, cell=cell)  # (T, B, H), (B, H), (B, H)
