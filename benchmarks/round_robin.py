"""Timing several calls against each other in one process, round by round: the helper commands' timer.

A shared machine's speed drifts; timing one call's rounds as a block lets a slow phase land on one of them. Here
every round runs each call in turn, each round starting one call later, so slow phases hit all of them alike. And
each timed call comes right after an untimed call of itself, as a training step follows the step before: a call
that follows a different one runs on the caches and branch predictors that one left, which at the tutorial's sizes
moves a call's time by tens of percent.
The first ``WARMUP_ROUNDS`` rounds are not counted.
"""

from __future__ import annotations

import gc
import resource
import statistics
import time
from contextlib import contextmanager
from typing import Callable, Hashable, NamedTuple, TypeVar

WARMUP_ROUNDS = 2

Key = TypeVar("Key", bound=Hashable)


class Medians(NamedTuple):
    seconds: float
    page_faults: float  # minor page faults of the process during the call: fresh memory touched


def rotated(items: list, shift: int) -> list:
    """``items`` started at position ``shift`` (mod len): each round starts with the next call, so that a slow
    phase of the machine does not always fall on the same one's turn."""
    shift %= len(items)
    return items[shift:] + items[:shift]


def _page_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


# pytest-benchmark's --benchmark-disable-gc serves only its own fixture; this timer is not one.
@contextmanager
def gc_disabled():
    """Collections would land at random inside timed rounds; collect once, then keep the collector off."""
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def round_robin_medians(calls: dict[Key, Callable[[], object]], rounds: int) -> dict[Key, Medians]:
    """Each call's median time and page faults over ``rounds`` counted rounds (garbage collection off)."""
    seconds: dict[Key, list[float]] = {key: [] for key in calls}
    faults: dict[Key, list[int]] = {key: [] for key in calls}
    with gc_disabled():
        for round_index in range(WARMUP_ROUNDS + rounds):
            for key in rotated(list(calls), round_index):
                calls[key]()  # untimed: the timed call follows a call of its own (module doc)
                faults_before = _page_faults()
                started = time.perf_counter()
                calls[key]()
                elapsed = time.perf_counter() - started
                if round_index >= WARMUP_ROUNDS:
                    seconds[key].append(elapsed)
                    faults[key].append(_page_faults() - faults_before)
    return {key: Medians(statistics.median(seconds[key]), statistics.median(faults[key])) for key in calls}
