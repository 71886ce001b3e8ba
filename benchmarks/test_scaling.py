"""How cost grows with the work: forward+backward on the CPU over sequence length and over hidden size.

Timed only when asked for (``--lstm-scaling``), run once for correctness under ``--benchmark-disable``; the
``benchmark`` entry point turns the results into log-log plots with fitted slopes (about 1 for sequence length,
up to 2 for hidden size once the matrix products dominate).
"""

from __future__ import annotations

import pytest

from lstm_models.benchmarking.grid import SCALING_ROUNDS, SCALING_WARMUP_ROUNDS, scaling_shapes
from lstm_models import label_of
from benchmarks.plugin import passes_or_skip

POINTS = scaling_shapes()


@pytest.mark.benchmark(disable_gc=True)
@pytest.mark.parametrize("sweep, value, scaling_shape", POINTS, ids=[shape.name for _, _, shape in POINTS])
def test_scaling(benchmark, request, impl, sweep, value, scaling_shape, threads):
    if not request.config.getoption("lstm_scaling") and not request.config.getoption("benchmark_disable"):
        pytest.skip("scaling sweeps are timed only with --lstm-scaling")
    device = "cpu"
    passes = passes_or_skip(impl, scaling_shape, device)
    benchmark.group = f"scaling-{sweep}"
    benchmark.extra_info.update({
        "impl": label_of(impl), "spec": impl, "device": device, "pass": "forward_backward", "shape": scaling_shape.name,
        "sizes": scaling_shape.sizes(), "threads": threads, "flops": scaling_shape.flops("forward_backward"),
        "sweep": sweep, "value": value,
    })
    benchmark.pedantic(passes.forward_backward, rounds=SCALING_ROUNDS, warmup_rounds=SCALING_WARMUP_ROUNDS,
                       iterations=1)
    passes.check_results()
    passes.check_gradients()
