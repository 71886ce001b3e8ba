"""``statquest``: the tutorial's LSTM unit, twelve scalar parameters named as in StatQuest's "LSTM with PyTorch".

The tutorial's names: ``*1`` multiplies the short-term memory, ``*2`` the input, ``b*1`` is the bias.

    wlr1 wlr2 blr1   remember-long-term gate (percent of long-term memory kept)   = nn.LSTM's forget gate
    wpr1 wpr2 bpr1   remember-potential gate (percent of potential memory kept)  = nn.LSTM's input gate
    wp1  wp2  bp1    potential memory                                            = nn.LSTM's cell gate
    wo1  wo2  bo1    output gate                                                 = nn.LSTM's output gate

So the unit is exactly an ``nn.LSTM(1, 1)``. nn.LSTM has two biases per gate (``bias_ih`` and ``bias_hh``) where the
tutorial has one, so going to the tutorial's names sums them, and coming back puts the sum in ``bias_ih`` and
zero in ``bias_hh``: ``statquest -> nn.LSTM -> statquest`` is exact, ``nn.LSTM -> statquest -> nn.LSTM`` keeps
the function (and the weights) but not the split of the biases.
"""

from __future__ import annotations

import torch
from torch import nn

from .contract import LSTMContract, refuse_unsupported

# The tutorial's name stem of each gate, in nn.LSTM's gate order: input, forget, cell, output.
GATE_STEMS = ("pr", "lr", "p", "o")
PARAMETER_NAMES = tuple(name for stem in ("lr", "pr", "p", "o") for name in (f"w{stem}1", f"w{stem}2", f"b{stem}1"))
# The only sizes the tutorial's unit has: every check of statquest's sizes reads them from here.
UNIT_SIZES = {"input_size": 1, "hidden_size": 1, "num_layers": 1}


def takes_sizes(**sizes: int) -> bool:
    """Whether the unit can be built with these sizes (any of ``UNIT_SIZES``' names; absent ones are taken as fit)."""
    return all(sizes.get(name, size) == size for name, size in UNIT_SIZES.items())


def statquest_to_lstm_state(params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tutorial's 12 scalars -> an ``nn.LSTM(1, 1)`` state dict (the whole bias goes to ``bias_ih_l0``)."""
    def column(prefix: str, suffix: str) -> torch.Tensor:
        return torch.stack([params[f"{prefix}{stem}{suffix}"].reshape(()) for stem in GATE_STEMS])  # (4,)

    bias = column("b", "1")
    return {
        "weight_ih_l0": column("w", "2").unsqueeze(1),  # (4, 1): the input's weights
        "weight_hh_l0": column("w", "1").unsqueeze(1),  # (4, 1): the short-term memory's weights
        "bias_ih_l0": bias,
        "bias_hh_l0": torch.zeros_like(bias),
    }


def lstm_to_statquest_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An ``nn.LSTM(1, 1)`` state dict -> the tutorial's 12 scalars (the two biases of each gate summed)."""
    expected = {"weight_ih_l0": (4, 1), "weight_hh_l0": (4, 1), "bias_ih_l0": (4,), "bias_hh_l0": (4,)}
    for key, shape in expected.items():
        if key not in state:
            raise KeyError(f"not an nn.LSTM(1, 1) state dict: {key} is missing")
        if tuple(state[key].shape) != shape:
            raise ValueError(f"not an nn.LSTM(1, 1) state dict: {key} has shape {tuple(state[key].shape)}, "
                             f"expected {shape}")
    bias = state["bias_ih_l0"] + state["bias_hh_l0"]
    params = {}
    for gate, stem in enumerate(GATE_STEMS):
        params[f"w{stem}1"] = state["weight_hh_l0"][gate, 0].clone()
        params[f"w{stem}2"] = state["weight_ih_l0"][gate, 0].clone()
        params[f"b{stem}1"] = bias[gate].clone()
    return {name: params[name] for name in PARAMETER_NAMES}


class StatQuestLSTM(LSTMContract):
    """The tutorial's unit behind nn.LSTM's calling contract; only input_size = hidden_size = num_layers = 1."""

    implementation_name = "statquest"
    takes_sizes = staticmethod(takes_sizes)  # the registry asks before building (registry.takes_sizes)

    def __init__(self, input_size: int = 1, hidden_size: int = 1, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, **options):
        super().__init__()
        sizes = {"input_size": input_size, "hidden_size": hidden_size, "num_layers": num_layers}
        for name, value in sizes.items():
            if not takes_sizes(**{name: value}):
                required = ", ".join(f"{key}={size}" for key, size in UNIT_SIZES.items())
                raise ValueError(f"statquest: the tutorial's unit has {required}; got {name}={value!r}")
        if not bias:
            raise ValueError("statquest: bias=False is not supported (the tutorial's unit has a bias per gate)")
        refuse_unsupported(self.implementation_name, options)
        self.input_size = self.hidden_size = self.num_layers = 1
        self.batch_first = bool(batch_first)
        # Draw exactly the nn.LSTM(1, 1) that this seed would give, so every implementation starts equal.
        reference = nn.LSTM(1, 1, device=options.get("device"), dtype=options.get("dtype"))
        for name, value in lstm_to_statquest_state(reference.state_dict()).items():
            self.register_parameter(name, nn.Parameter(value))

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Accepts the tutorial's names or an ``nn.LSTM(1, 1)`` state dict (converted on the way in)."""
        if "weight_ih_l0" in state_dict:
            state_dict = lstm_to_statquest_state(state_dict)
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def lstm_state_dict(self) -> dict[str, torch.Tensor]:
        """This unit's weights in nn.LSTM(1, 1) layout."""
        return statquest_to_lstm_state(self.state_dict())

    def lstm_unit(self, input_value: torch.Tensor, long_memory: torch.Tensor, short_memory: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """The tutorial's step, on (B, 1) tensors: returns the updated (long-term, short-term) memories."""
        long_remember_percent = torch.sigmoid(short_memory * self.wlr1 + input_value * self.wlr2 + self.blr1)
        potential_remember_percent = torch.sigmoid(short_memory * self.wpr1 + input_value * self.wpr2 + self.bpr1)
        potential_memory = torch.tanh(short_memory * self.wp1 + input_value * self.wp2 + self.bp1)
        updated_long_memory = long_memory * long_remember_percent + potential_remember_percent * potential_memory
        output_percent = torch.sigmoid(short_memory * self.wo1 + input_value * self.wo2 + self.bo1)
        updated_short_memory = torch.tanh(updated_long_memory) * output_percent
        return updated_long_memory, updated_short_memory

    def _run_stack(self, x, h0, c0):
        short_memory, long_memory = h0[0], c0[0]  # (B, 1)
        outputs = []
        for input_value in x.unbind(0):  # T x (B, 1)
            long_memory, short_memory = self.lstm_unit(input_value, long_memory, short_memory)
            outputs.append(short_memory)
        return torch.stack(outputs), short_memory.unsqueeze(0), long_memory.unsqueeze(0)  # (T, B, 1), (1, B, 1)
