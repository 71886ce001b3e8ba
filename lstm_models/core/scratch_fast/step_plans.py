"""Whole sets of a layer's small buffers, with the per-step views its loops index, kept between calls.

Why: at the tutorial's sizes a time step's arithmetic is a few microseconds, and what a call does before its loops
starts costs as much again: making its buffers, and the per-step views of them (one ``unbind`` per buffer, a Python
call and T view objects each), a large part of a `toy` forward (docs/scratch_fast.md, "Memory").
Kept in a plan, buffers and views are made once per shape. Large buffers are ``workspace``'s: there the views cost
nothing next to the arithmetic, and a plan would keep tens of MB per shape.

Rules that keep reuse safe (the same as ``workspace``'s):
- a plan is in the pool only while nobody uses it: ``take`` removes it, ``give_back`` returns it;
- a plan whose buffers autograd saves for a backward returns by ``give_back_when_freed``, when the graph frees the
  saved tensor (after ``backward()`` without ``retain_graph``, or when the graph is dropped), never earlier, so two
  forward graphs alive at once, or a retained graph, never share a plan;
- what a call returns to its caller is never a plan's memory: it is copied out first;
- only on CPU, and not while tracing or under ``torch.inference_mode`` (``workspace.poolable``);
- at most ``MAX_FREE_PLANS`` free plans are kept in all; beyond it the one returned longest ago goes.
"""

from __future__ import annotations

import threading
import weakref
from typing import Callable, Hashable, TypeVar

import torch

from . import workspace

# Free plans kept in all, over every shape. A plan is under 8 MiB (none of its nine buffers is larger than twice
# workspace.MIN_POOLED_BYTES; 1.6 MB at the `small` benchmark shape); a training loop needs one or two per shape.
MAX_FREE_PLANS = 8

Plan = TypeVar("Plan")

_lock = threading.Lock()
_free: list[tuple[Hashable, object]] = []  # (key, plan), oldest first


def wanted(numel: int, like: torch.Tensor) -> bool:
    """Whether a call whose largest buffer has ``numel`` elements of ``like``'s dtype should take a plan: below the
    size from which ``workspace`` pools buffers, where ``workspace`` may keep them."""
    return type(numel) is int and not workspace.large_enough(numel, like.element_size()) and workspace.poolable(like)


def take(key: Hashable, make: Callable[[], Plan]) -> Plan:
    """A free plan made for ``key``, or ``make()``'s new one."""
    with _lock:
        for index in range(len(_free) - 1, -1, -1):  # the most recently returned: its memory is the warmest
            if _free[index][0] == key:
                return _free.pop(index)[1]
    return make()


def give_back(key: Hashable, plan: object) -> None:
    """Return a plan from ``take`` that the caller no longer uses (nothing of it may be read or written later)."""
    with _lock:
        _free.append((key, plan))
        del _free[:-MAX_FREE_PLANS]  # the oldest beyond the bound


def give_back_when_freed(saved: torch.Tensor, key: Hashable, plan: object) -> None:
    """Return ``plan`` to the pool once ``saved``, a tensor that only the caller's autograd graph holds, is freed.
    ``saved`` must be a tensor object of its own (an alias made for this), not one the plan itself keeps."""
    weakref.finalize(saved, give_back, key, plan)


def free_plans() -> int:
    """How many free plans the pool holds (for tests and diagnostics)."""
    with _lock:
        return len(_free)


def clear() -> None:
    """Drop every free plan (their memory goes back to the allocator)."""
    with _lock:
        _free.clear()
