"""Peak memory of one training step (forward + backward), measured in a fresh process.

    python -m benchmarks.peak_memory scratch_fast medium [--device cpu]

Prints one JSON line: ``baseline_mib`` (after the module, its weights and the inputs exist), ``peak_mib`` and
``step_mib`` (the step's peak above that baseline). On CPU the figures are the process's peak resident set size
(``ru_maxrss``), which is why each measurement needs a process of its own: the high-water mark never goes down.
On CUDA they are ``torch.cuda.max_memory_allocated``.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys

import torch

from benchmarks.grid import SHAPES
from benchmarks.timing import Passes, build_for

MIB = 2 ** 20


def peak_bytes(device: str) -> int:
    if device == "cuda":
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated()
    # Linux reports ru_maxrss in KiB (macOS in bytes).
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def measure(impl: str, shape_name: str, device: str) -> dict:
    shape = SHAPES[shape_name]
    passes = Passes(build_for(impl, shape, device), shape, device)
    baseline = peak_bytes(device)
    passes.forward_backward()
    peak = peak_bytes(device)
    passes.check_results()
    passes.check_gradients()
    return {"impl": impl, "shape": shape_name, "device": device, "baseline_mib": baseline / MIB,
            "peak_mib": peak / MIB, "step_mib": (peak - baseline) / MIB}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peak_memory", description=__doc__.split("\n\n")[0])
    parser.add_argument("impl", help="a registered implementation")
    parser.add_argument("shape", choices=list(SHAPES), help="a named shape of the benchmark grid")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.impl, args.shape, args.device)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
