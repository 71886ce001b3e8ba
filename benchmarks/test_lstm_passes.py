"""Forward, backward and forward+backward of every registered implementation, per device and shape.

One benchmark group per (device, pass, shape), so implementations sit side by side in pytest-benchmark's table.
Run the grid:  pytest benchmarks --benchmark-only [--lstm-impls ... --lstm-shapes ... --lstm-devices ...]
"""

from __future__ import annotations

import pytest

from lstm_models import label_of
from lstm_models.benchmarking.grid import rounds_for
from benchmarks.plugin import passes_or_skip


# Collections would land at random inside timed rounds: pytest-benchmark keeps the collector off while timing.
@pytest.mark.benchmark(disable_gc=True)
def test_lstm_pass(benchmark, impl, device_name, shape, pass_name, threads):
    device = device_name
    passes = passes_or_skip(impl, shape, device)
    benchmark.group = f"{device}-{pass_name}-{shape.name}"
    benchmark.extra_info.update({
        "impl": label_of(impl), "spec": impl, "device": device, "pass": pass_name, "shape": shape.name,
        "sizes": shape.sizes(), "threads": threads, "flops": shape.flops(pass_name),
        # Apart from the timed rounds: the checks before timing (an implementation's first calls in this process,
        # where compiled compiles), then the pass's own first call (lazy set-up, first-touch memory).
        "check_s": passes.check_s, "first_call_s": passes.first_call(pass_name),
    })
    rounds, warmup = rounds_for(shape.name, device)
    if pass_name == "backward":
        benchmark.pedantic(passes.backward, setup=passes.prepare_backward, rounds=rounds,
                           warmup_rounds=warmup, iterations=1)
    else:
        benchmark.pedantic(getattr(passes, pass_name), rounds=rounds, warmup_rounds=warmup, iterations=1)
    passes.check_results()
    if pass_name != "forward":
        passes.check_gradients()
