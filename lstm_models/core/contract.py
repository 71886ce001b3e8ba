"""The calling contract every hand-written LSTM shares with ``torch.nn.LSTM``.

``LSTMContract`` turns whatever ``nn.LSTM`` accepts (batched or unbatched input, ``batch_first``, an optional
``(h0, c0)``) into one canonical form, time-major ``(T, B, I)`` with states ``(L, B, H)``, calls the subclass's
``_run_stack`` on it, and turns the result back. Subclasses only write the recurrence (``LSTMParameters``
subclasses only one layer's, ``_run_layer``).

``LSTMParameters`` creates the weights with ``nn.LSTM``'s names, shapes, registration order and initialisation
(``U(-1/sqrt(H), 1/sqrt(H))`` drawn parameter by parameter in registration order, see
``torch.nn.modules.rnn.RNNBase.reset_parameters``), so that under the same ``torch.manual_seed`` a hand-written
LSTM starts bit-identical to ``nn.LSTM`` and state dicts copy key by key.
"""

from __future__ import annotations

import math

import torch
from torch import nn

# nn.LSTM options that the hand-written implementations do not implement, with the value that means "off".
UNSUPPORTED_OPTIONS = {"dropout": 0.0, "bidirectional": False, "proj_size": 0}


def check_sizes(input_size: int, hidden_size: int, num_layers: int) -> None:
    """Refuse sizes nn.LSTM would refuse, with the parameter's name in the message."""
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def refuse_unsupported(implementation: str, options: dict) -> None:
    """Raise a ValueError naming the first nn.LSTM option this implementation cannot honour."""
    for name, off_value in UNSUPPORTED_OPTIONS.items():
        if name in options and options[name] != off_value:
            raise ValueError(
                f"{implementation}: nn.LSTM option {name}={options[name]!r} is not supported "
                f"(only {name}={off_value!r})"
            )
    unknown = sorted(set(options) - set(UNSUPPORTED_OPTIONS) - {"device", "dtype"})
    if unknown:
        raise TypeError(f"{implementation}: unexpected keyword argument(s) {', '.join(unknown)}")


class LSTMContract(nn.Module):
    """Input and state handling identical to nn.LSTM; subclasses implement ``_run_stack``."""

    input_size: int
    hidden_size: int
    num_layers: int
    batch_first: bool

    def _run_stack(
        self, x: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (T, B, I), h0/c0 (L, B, H) -> output (T, B, H), h_n (L, B, H), c_n (L, B, H)."""
        raise NotImplementedError

    def forward(self, input: torch.Tensor, hx: tuple[torch.Tensor, torch.Tensor] | None = None):
        if not isinstance(input, torch.Tensor):
            raise TypeError(f"{type(self).__name__} takes a Tensor input (PackedSequence is not supported)")
        if input.dim() not in (2, 3):
            raise ValueError(f"LSTM: expected input to be 2-D or 3-D but received {input.dim()}-D tensor")
        if input.size(-1) != self.input_size:
            raise RuntimeError(f"input.size(-1) must be equal to input_size. Expected {self.input_size}, "
                               f"got {input.size(-1)}")
        unbatched = input.dim() == 2
        x = input.unsqueeze(1) if unbatched else (input.transpose(0, 1) if self.batch_first else input)  # (T, B, I)
        batch = x.size(1)
        state_shape = (self.num_layers, batch, self.hidden_size)
        if hx is None:
            h0 = c0 = x.new_zeros(state_shape)  # (L, B, H)
        else:
            h0, c0 = hx
            if unbatched:
                h0, c0 = h0.unsqueeze(1), c0.unsqueeze(1)  # (L, 1, H)
            for name, state in (("h0", h0), ("c0", c0)):
                if tuple(state.shape) != state_shape:
                    raise RuntimeError(f"Expected hidden size {state_shape}, got {tuple(state.shape)} for {name}")
        output, h_n, c_n = self._run_stack(x, h0, c0)  # (T, B, H), (L, B, H), (L, B, H)
        if unbatched:
            return output.squeeze(1), (h_n.squeeze(1), c_n.squeeze(1))  # (T, H), (L, H)
        if self.batch_first:
            output = output.transpose(0, 1)  # (B, T, H)
        return output, (h_n, c_n)

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
                f"batch_first={self.batch_first}")


class LSTMParameters(LSTMContract):
    """An LSTMContract whose weights are laid out, named and initialised exactly like nn.LSTM's."""

    implementation_name = "lstm"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, **options):
        super().__init__()
        check_sizes(input_size, hidden_size, num_layers)
        refuse_unsupported(self.implementation_name, options)
        factory = {"device": options.get("device"), "dtype": options.get("dtype")}
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first = bool(bias), bool(batch_first)
        gate_rows = 4 * hidden_size  # gates stacked as nn.LSTM stacks them: input, forget, cell, output
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size
            # Registration order matters: reset_parameters draws in this order, as nn.LSTM does.
            self.register_parameter(f"weight_ih_l{layer}",
                                    nn.Parameter(torch.empty(gate_rows, layer_input, **factory)))
            self.register_parameter(f"weight_hh_l{layer}",
                                    nn.Parameter(torch.empty(gate_rows, hidden_size, **factory)))
            if self.bias:
                self.register_parameter(f"bias_ih_l{layer}", nn.Parameter(torch.empty(gate_rows, **factory)))
                self.register_parameter(f"bias_hh_l{layer}", nn.Parameter(torch.empty(gate_rows, **factory)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            nn.init.uniform_(weight, -bound, bound)

    def layer_weights(self, layer: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """(weight_ih, weight_hh, bias_ih, bias_hh) of one layer; biases are None when bias=False."""
        if self.bias:
            return (getattr(self, f"weight_ih_l{layer}"), getattr(self, f"weight_hh_l{layer}"),
                    getattr(self, f"bias_ih_l{layer}"), getattr(self, f"bias_hh_l{layer}"))
        return getattr(self, f"weight_ih_l{layer}"), getattr(self, f"weight_hh_l{layer}"), None, None

    def _run_layer(self, x: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor, weights: tuple
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One layer: x (T, B, I), h0/c0 (B, H), ``layer_weights`` -> output (T, B, H), h_n and c_n (B, H)."""
        raise NotImplementedError

    def _run_stack(self, x, h0, c0):
        """The layers in turn, each layer's outputs the next one's inputs."""
        final_h, final_c = [], []
        for layer in range(self.num_layers):
            x, h, c = self._run_layer(x, h0[layer], c0[layer], self.layer_weights(layer))  # (T, B, H)
            final_h.append(h)
            final_c.append(c)
        if self.num_layers == 1:  # one kernel fewer than stack, which counts at the tutorial's sizes
            return x, final_h[0].unsqueeze(0), final_c[0].unsqueeze(0)  # (T, B, H), (1, B, H), (1, B, H)
        return x, torch.stack(final_h), torch.stack(final_c)  # (T, B, H), (L, B, H), (L, B, H)
