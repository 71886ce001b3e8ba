"""Peak memory of one training step (forward + backward), measured in a fresh process.

    python -m benchmarks.peak_memory scratch_fast medium [--device cpu] [--steps 3]

Prints one JSON line: ``baseline_mib`` (after the module, its weights and the inputs exist), ``peak_mib`` and
``step_mib`` (the step's peak above that baseline). With ``--steps N`` the first N - 1 steps run unmeasured and
the figures are the last step's, still above the baseline before the first step, and ``held_mib`` is what the
earlier steps left allocated: on CUDA the library workspaces and ``scratch_fast``'s static buffers for its CUDA
graphs (which a shape gets on its second call), on CPU ``scratch_fast``'s buffer pool. That is the memory a
training loop needs once it runs, where the first step also pays for one-off allocations.

On CPU (Linux) the figures are the process's resident set: the baseline is ``VmRSS`` and the peak ``VmHWM`` from
/proc/self/status, with the high-water mark reset to the baseline just before the step (``/proc/self/clear_refs``).
``ru_maxrss`` would not do: Linux carries it across ``fork`` and ``exec``, so a child of a large pytest process
starts with its parent's peak. A fresh process per measurement keeps earlier allocations (other implementations,
other shapes) out of the figure. On CUDA the figures are ``torch.cuda.memory_allocated`` and
``max_memory_allocated`` after ``reset_peak_memory_stats``.

The process runs with glibc's default allocator settings, as a training process would. Under them an
implementation that frees many large tensors (``scratch``) can land on one of two levels from process to process:
when glibc frees a block that it had mapped from the kernel, it raises its mmap threshold to that block's size (up
to 32 MiB), so later blocks of that size come from the heap, which keeps freed memory unless the heap's top is free
(mallopt(3), M_MMAP_THRESHOLD). ``MALLOC_MMAP_THRESHOLD_=131072`` in the environment fixes the threshold and
makes the figure repeat (the README's CPU results have the measurements).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from lstm_models.benchmarking.grid import SHAPES
from benchmarks.timing import Passes, build_for

MIB = 2 ** 20


def _status_bytes(field: str) -> int:
    """A memory field of /proc/self/status (reported in kB), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field} line")


def start_peak_tracking(device: str) -> int:
    """The current memory in use, with the peak reset to it; returns the baseline in bytes."""
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated()
    Path("/proc/self/clear_refs").write_text("5")  # 5: reset the peak RSS (VmHWM) to the current RSS
    return _status_bytes("VmRSS")


def peak_since_start(device: str) -> int:
    if device == "cuda":
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated()
    return _status_bytes("VmHWM")


def measure(impl: str, shape_name: str, device: str, steps: int = 1) -> dict:
    shape = SHAPES[shape_name]
    passes = Passes(build_for(impl, shape, device), shape, device)
    baseline = start_peak_tracking(device)
    for _ in range(steps - 1):
        passes.forward_backward()
    held = start_peak_tracking(device) - baseline if steps > 1 else 0
    passes.forward_backward()
    peak = peak_since_start(device)
    passes.check_results()
    passes.check_gradients()
    return {"impl": impl, "shape": shape_name, "device": device, "steps": steps, "baseline_mib": baseline / MIB,
            "held_mib": held / MIB, "peak_mib": peak / MIB, "step_mib": (peak - baseline) / MIB}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peak_memory", description=__doc__.split("\n\n")[0])
    parser.add_argument("impl", help="a registered implementation")
    parser.add_argument("shape", choices=list(SHAPES), help="a named shape of the benchmark grid")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--steps", type=int, default=1,
                        help="training steps in the process; the last one is measured (default 1: the first step)")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps: must be at least 1 (got {args.steps})")
    if args.device == "cpu" and not Path("/proc/self/clear_refs").exists():
        parser.error("--device cpu: peak memory is read from /proc/self (Linux only), which this machine lacks")
    print(json.dumps(measure(args.impl, args.shape, args.device, args.steps)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
