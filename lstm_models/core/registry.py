"""The one registry of LSTM implementations: names -> builders.

The CLI, the MLproject parameter, the tests and the benchmarks all select from ``IMPLEMENTATIONS`` and build
through ``build_lstm``, so a new implementation is added here once and is compared everywhere. ``select_names``
reads a comma-separated selection (of implementations, or of any other named choices such as benchmark shapes)
the same way for every command line; each caller reports its error in its own channel.
"""

from __future__ import annotations

from typing import Callable, Iterable

from torch import nn

from .scratch import ScratchLSTM
from .scratch_fast import ScratchFastLSTM
from .statquest import StatQuestLSTM

_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "native": nn.LSTM,         # torch.nn.LSTM itself: cuDNN on CUDA, oneDNN/ATen kernels on CPU
    "scratch": ScratchLSTM,    # readable reference, autograd backward
    "scratch_fast": ScratchFastLSTM,  # same math, hand-written backward through time, large matrix products
    "statquest": StatQuestLSTM,  # the tutorial's 12-parameter unit, sizes 1/1/1 only
}

IMPLEMENTATIONS: tuple[str, ...] = tuple(sorted(_BUILDERS))


class UnknownImplementationError(ValueError):
    """An implementation name that is not in the registry."""


def check_implementation(name: str) -> str:
    """Return ``name`` if it is registered, else raise an error listing the registered names."""
    if name not in _BUILDERS:
        raise UnknownImplementationError(
            f"unknown LSTM implementation {name!r}; registered: {', '.join(IMPLEMENTATIONS)}")
    return name


def build_lstm(name: str, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
               batch_first: bool = False, **options) -> nn.Module:
    """Build the registered implementation ``name`` with nn.LSTM's signature; ``options`` are nn.LSTM's others
    (``device``, ``dtype``, ``dropout``, ...). Hand-written implementations refuse options they lack."""
    builder = _BUILDERS[check_implementation(name)]
    return builder(input_size, hidden_size, num_layers, bias=bias, batch_first=batch_first, **options)


class UnknownNamesError(ValueError):
    """Entries of a comma-separated selection that are not among the allowed names."""

    def __init__(self, unknown: list[str], allowed: tuple[str, ...]):
        self.unknown, self.allowed = unknown, allowed
        shown = ", ".join(repr(name) for name in unknown)
        super().__init__(f"unknown {shown}; allowed: 'all' or comma-separated names from {', '.join(allowed)}")


def select_names(text: str, allowed: Iterable[str] = IMPLEMENTATIONS) -> tuple[str, ...]:
    """The names a comma-separated selection picks: 'all' (or nothing) means every allowed name, in their order;
    otherwise the names given, stripped, in the order given, repeats dropped. An entry that is not allowed, an empty
    one ('a,,b') included, raises UnknownNamesError."""
    allowed = tuple(allowed)
    text = str(text).strip()
    if text in ("", "all"):
        return allowed
    names = [name.strip() for name in text.split(",")]
    unknown = [name for name in names if name not in allowed]
    if unknown:
        raise UnknownNamesError(unknown, allowed)
    return tuple(dict.fromkeys(names))
