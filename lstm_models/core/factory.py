"""One seeded factory for inputs, so every implementation is compared on the same tensors.

In the spirit of PyTorch's benchmarks/fastrnns/factory.py ``lstm_inputs``: the seed fixes the draw, and the draw
order (x, then h0, then c0) never changes, so any two callers with the same arguments get equal tensors.
"""

from __future__ import annotations

import torch


def lstm_inputs(seq_len: int, batch: int, input_size: int, hidden_size: int, num_layers: int = 1, *,
                seed: int = 0, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
                requires_grad: bool = False) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """x (T, B, I) and (h0, c0) each (L, B, H), drawn from N(0, 1) on the CPU and then moved, so CPU and CUDA
    runs see the same numbers."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(seq_len, batch, input_size, generator=generator, dtype=dtype)  # (T, B, I)
    h0 = torch.randn(num_layers, batch, hidden_size, generator=generator, dtype=dtype)  # (L, B, H)
    c0 = torch.randn(num_layers, batch, hidden_size, generator=generator, dtype=dtype)  # (L, B, H)
    tensors = [t.to(device).requires_grad_(requires_grad) for t in (x, h0, c0)]
    return tensors[0], (tensors[1], tensors[2])
