"""Whether ``torch.compile`` or ``torch.export`` is tracing the code now: then the layers keep to plain tensor
operations (no pooled buffers, no cached constants, no CUDA graphs, no CUDA-only kernels), which trace into a graph
that any device runs."""

from __future__ import annotations

import torch


def tracing() -> bool:
    return torch.compiler.is_compiling() or torch.compiler.is_exporting()
