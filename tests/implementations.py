"""Implementations a user might bring, good and bad, for the tests of specs and of the conformance check (selected
as ``tests.implementations:Name``)."""

from torch import nn

NOT_CALLABLE = 3


class ScaledLSTM(nn.LSTM):
    """nn.LSTM with its output scaled by 1.01: close to nn.LSTM, and not its function."""

    def forward(self, x, hx=None):
        output, state = super().forward(x, hx)
        return output * 1.01, state


class RenamedLSTM(nn.Module):
    """The right function under other parameter names: nn.LSTM's state dict does not load."""

    def __init__(self, input_size, hidden_size, num_layers=1, **options):
        super().__init__()
        self.inner = nn.LSTM(input_size, hidden_size, num_layers, **options)

    def forward(self, x, hx=None):
        return self.inner(x, hx)


class NoUnbatchedLSTM(nn.LSTM):
    """nn.LSTM that refuses unbatched input: a case it does not support."""

    def forward(self, x, hx=None):
        if x.dim() == 2:
            raise ValueError("NoUnbatchedLSTM takes batched input only")
        return super().forward(x, hx)


def raises_while_building(input_size, hidden_size, num_layers=1, **options):
    raise RuntimeError("this implementation is not finished")


def builds_a_number(input_size, hidden_size, num_layers=1, **options):
    return 42
