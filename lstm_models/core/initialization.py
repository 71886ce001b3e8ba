"""Starting points shared by every implementation, applied through nn.LSTM's weight layout.

Every implementation can show its weights as an nn.LSTM state dict (``lstm_state_dict``) and load one, so an
initialisation written once against that layout gives every implementation the same starting function.
"""

from __future__ import annotations

import torch
from torch import nn

INIT_SCHEMES = ("lstm", "statquest")


def lstm_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    """The module's weights under nn.LSTM's names, in nn.LSTM's registration order."""
    to_layout = getattr(module, "lstm_state_dict", None)
    return to_layout() if to_layout is not None else module.state_dict()


def apply_statquest_init(module: nn.Module) -> None:
    """The tutorial notebook's start: every weight drawn from N(0, 1), every bias 0.

    Weights are drawn in nn.LSTM's order (weight_ih_l0, weight_hh_l0, ... per layer) from the global generator,
    so the same seed gives every implementation the same weights."""
    state = {}
    with torch.no_grad():
        for key, value in lstm_state_dict(module).items():
            state[key] = torch.randn_like(value) if key.startswith("weight") else torch.zeros_like(value)
    module.load_state_dict(state)


def initialize(module: nn.Module, scheme: str) -> nn.Module:
    """``lstm``: keep nn.LSTM's own U(-1/sqrt(H), 1/sqrt(H)) draw made at construction. ``statquest``: the
    tutorial's N(0, 1) weights and zero biases."""
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"init must be one of {', '.join(INIT_SCHEMES)}, got {scheme!r}")
    if scheme == "statquest":
        apply_statquest_init(module)
    return module
