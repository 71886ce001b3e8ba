"""Forward, backward and forward+backward of every registered implementation, per device and shape.

One benchmark group per (device, pass, shape), so implementations sit side by side in pytest-benchmark's table.
Run the grid:  pytest benchmarks --benchmark-only [--lstm-impls ... --lstm-shapes ... --lstm-devices ...]
"""

from __future__ import annotations

from benchmarks.grid import rounds_for
from benchmarks.timing import checked_passes, gc_disabled


def test_lstm_pass(benchmark, impl, device_name, shape, pass_name, threads):
    device = device_name
    passes = checked_passes(impl, shape, device)
    benchmark.group = f"{device}-{pass_name}-{shape.name}"
    benchmark.extra_info.update({
        "impl": impl, "device": device, "pass": pass_name, "shape": shape.name, "sizes": shape.sizes(),
        "threads": threads, "flops": shape.flops(pass_name),
    })
    rounds, warmup = rounds_for(shape.name, device)
    with gc_disabled():
        if pass_name == "backward":
            benchmark.pedantic(passes.backward, setup=passes.prepare_backward, rounds=rounds,
                               warmup_rounds=warmup, iterations=1)
        else:
            benchmark.pedantic(getattr(passes, pass_name), rounds=rounds, warmup_rounds=warmup, iterations=1)
    passes.check_results()
    if pass_name != "forward":
        passes.check_gradients()
