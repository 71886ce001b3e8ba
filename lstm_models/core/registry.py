"""The one registry of LSTM implementations: names -> builders, and the specs that name a user's own.

The CLI, the MLproject parameter, the tests and the benchmarks all select from it and build through
``build_lstm``, so a new implementation is added once and is compared everywhere. Wherever a name is accepted, a
*spec* is too:

- a registered name: a built-in (``IMPLEMENTATIONS``), or one an installed package registers in the entry-point
  group ``lstm_bench.implementations`` (as pytest finds ``pytest11`` plugins);
- ``package.module:Attribute``: a class or factory taking nn.LSTM's constructor arguments ``(input_size,
  hidden_size, num_layers=1, bias=True, batch_first=False, **options)``, importable where the command runs;
- either of them after ``label=``, which names it in runs, tables and figures (otherwise the registered name, or
  the attribute's name).

``select_names`` reads a comma-separated selection of plain names (benchmark shapes, say) the same way for every
command line; ``select_specs`` does it for implementations. Each caller reports errors in its own channel.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import entry_points
from typing import Callable, Iterable

from torch import nn

from .compiled import CompiledScratchLSTM
from .scratch import ScratchLSTM
from .scratch_fast import ScratchFastLSTM
from .statquest import StatQuestLSTM

ENTRY_POINT_GROUP = "lstm_bench.implementations"

_BUILTINS: dict[str, Callable[..., nn.Module]] = {
    "native": nn.LSTM,         # torch.nn.LSTM itself: cuDNN on CUDA, oneDNN/ATen kernels on CPU
    "scratch": ScratchLSTM,    # readable reference, autograd backward
    "scratch_fast": ScratchFastLSTM,  # same math, hand-written backward through time, large matrix products
    "statquest": StatQuestLSTM,  # the tutorial's 12-parameter unit, sizes 1/1/1 only
    "compiled": CompiledScratchLSTM,  # scratch with its cell under torch.compile
}


def _installed_names() -> tuple[str, ...]:
    """Names that installed packages register (read from their metadata; nothing is imported)."""
    return tuple(sorted(point.name for point in entry_points(group=ENTRY_POINT_GROUP) if point.name not in _BUILTINS))


IMPLEMENTATIONS: tuple[str, ...] = tuple(sorted(_BUILTINS)) + _installed_names()
# What 'all' selects: every registered name but ``compiled``, whose compilation costs tens of seconds per shape
# (docs/scratch_fast.md, "compiled") and would more than double the default comparison's time.
DEFAULT_SELECTION: tuple[str, ...] = tuple(name for name in IMPLEMENTATIONS if name != "compiled")


class SpecError(ValueError):
    """A spec that cannot be resolved or built; ``str()`` is one line naming the spec and why."""

    def __init__(self, spec: str, reason: str):
        self.spec, self.reason = spec, reason
        super().__init__(f"{spec!r}: {reason}")


class UnknownImplementationError(SpecError):
    """A plain name that is not registered."""


@dataclass(frozen=True)
class Implementation:
    spec: str
    label: str
    builder: Callable[..., nn.Module]


def _split(spec: str) -> tuple[str, str]:
    label, separator, target = spec.strip().partition("=")
    return (label.strip(), target.strip()) if separator else ("", label.strip())


def _registered(name: str) -> Callable[..., nn.Module]:
    if name in _BUILTINS:
        return _BUILTINS[name]
    for point in entry_points(group=ENTRY_POINT_GROUP, name=name):
        return point.load()
    raise UnknownImplementationError(name, f"unknown LSTM implementation; registered: {', '.join(IMPLEMENTATIONS)}, "
                                           "or give package.module:Attribute")


def _imported(target: str) -> Callable[..., nn.Module]:
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise SpecError(target, "not package.module:Attribute")
    try:
        found = importlib.import_module(module_name)
    except Exception as error:  # a module that fails on import (not only ImportError) is the user's to see
        raise SpecError(target, f"cannot import {module_name} ({type(error).__name__}: {error})") from None
    for part in attribute.split("."):
        if not hasattr(found, part):
            raise SpecError(target, f"{module_name} has no attribute {attribute!r}")
        found = getattr(found, part)
    if not callable(found):
        raise SpecError(target, f"{attribute} is a {type(found).__name__}, not a class or factory")
    return found


@lru_cache(maxsize=None)
def resolve(spec: str) -> Implementation:
    """The implementation a spec names; raises SpecError (UnknownImplementationError for an unknown plain name)."""
    label, target = _split(spec)
    if not target:
        raise SpecError(spec, "empty")
    try:
        if ":" in target:
            builder, default_label = _imported(target), target.rpartition(":")[2].rpartition(".")[2]
        else:
            builder, default_label = _registered(target), target
    except SpecError as error:
        raise type(error)(spec.strip(), error.reason) from None  # named as the user wrote it
    return Implementation(spec.strip(), label or default_label, builder)


def label_of(spec: str) -> str:
    return resolve(spec).label


def check_implementation(spec: str) -> str:
    """Return ``spec`` if it resolves, else raise SpecError saying why."""
    resolve(spec)
    return spec


def build_lstm(spec: str, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
               batch_first: bool = False, **options) -> nn.Module:
    """Build the implementation ``spec`` names with nn.LSTM's signature; ``options`` are nn.LSTM's others
    (``device``, ``dtype``, ``dropout``, ...). Hand-written implementations refuse options they lack."""
    builder = resolve(spec).builder
    module = builder(input_size, hidden_size, num_layers, bias=bias, batch_first=batch_first, **options)
    if not isinstance(module, nn.Module):
        raise SpecError(spec, f"built a {type(module).__name__}, not a torch.nn.Module")
    return module


def takes_sizes(spec: str, **sizes: int) -> bool:
    """Whether the implementation can be built with these sizes: a builder with a ``takes_sizes`` of its own (the
    tutorial's 1x1 unit) says; any other takes every size."""
    check = getattr(resolve(spec).builder, "takes_sizes", None)
    return check(**sizes) if check is not None else True


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


def select_specs(text: str) -> tuple[str, ...]:
    """The implementations a comma-separated selection of specs picks: 'all' (or nothing) means
    ``DEFAULT_SELECTION``; otherwise the specs given, in order, each resolved (SpecError names the first bad one),
    repeats of a label dropped."""
    text = str(text).strip()
    if text in ("", "all"):
        return DEFAULT_SELECTION
    specs = [spec.strip() for spec in text.split(",")]
    by_label: dict[str, str] = {}
    for spec in specs:
        by_label.setdefault(resolve(spec).label, spec)  # an empty entry raises here
    return tuple(by_label.values())
