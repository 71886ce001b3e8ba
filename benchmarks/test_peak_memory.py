"""Peak memory of one training step per implementation, each in a fresh process (see benchmarks/peak_memory.py).

The benchmark's time is the whole child process (start-up included) and means little; the result is in
``extra_info`` (``step_mib``: the step's peak above the baseline) and in the table the plugin prints at the end
of the session, with each implementation's ratio to native.
"""

from __future__ import annotations

import pytest

import json
import os
import subprocess
import sys
from pathlib import Path

from lstm_models import label_of
from lstm_models.benchmarking.grid import Shape
from benchmarks.plugin import MEMORY_RESULTS

pytestmark = pytest.mark.slow  # each case starts a process

ROOT = Path(__file__).resolve().parents[1]


def run_in_fresh_process(impl: str, shape: Shape, device: str, threads: int) -> dict:
    # The checkout first; a user's implementation stays importable from the PYTHONPATH it was given.
    env = dict(os.environ, OMP_NUM_THREADS=str(threads),
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, "-m", "benchmarks.peak_memory", impl, shape.name, "--device", device],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_peak_memory_of_training_step(benchmark, request, impl, device_name, shape, threads):
    results = request.config.stash.setdefault(MEMORY_RESULTS, {})
    measured = {}

    def measure():
        measured.update(run_in_fresh_process(impl, shape, device_name, threads))

    benchmark.group = f"memory-{device_name}-{shape.name}"
    benchmark.pedantic(measure, rounds=1, iterations=1)
    if not measured:  # --benchmark-disable still calls it once; this guards a future change of that
        measure()
    assert measured["peak_mib"] >= measured["baseline_mib"] > 0
    output_mib = shape.seq_len * shape.batch * shape.hidden_size * 4 / 2 ** 20  # float32 (T, B, H)
    if output_mib >= 1:  # smaller steps can be served from pages the process already holds
        assert measured["step_mib"] >= output_mib, "a training step cannot need less than its own output"
    results[(device_name, shape.name, label_of(impl))] = measured["step_mib"]
    benchmark.extra_info.update({
        "impl": label_of(impl), "spec": impl, "device": device_name, "pass": "memory", "shape": shape.name,
        "sizes": shape.sizes(),
        "threads": threads, "baseline_mib": measured["baseline_mib"], "peak_mib": measured["peak_mib"],
        "step_mib": measured["step_mib"],
    })
