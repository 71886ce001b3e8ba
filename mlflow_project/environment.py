"""Tags that say where a result came from: library versions, the machine, the device and the code's commit."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

from lstm_models.core.scratch_fast import fused_steps, huge_pages
from lstm_models.source import source_commit

from .orphans import process_tags


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo where there is one, else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment_tags(device: str = "cpu") -> dict[str, str]:
    """Versions, machine and device, under a ``lstm_bench.`` prefix so they sort together in the MLflow UI."""
    import lightning
    import mlflow

    tags = {
        "lstm_bench.torch_version": torch.__version__,
        "lstm_bench.lightning_version": lightning.__version__,
        "lstm_bench.mlflow_version": mlflow.__version__,
        "lstm_bench.python_version": platform.python_version(),
        "lstm_bench.device": device,
        "lstm_bench.cpu_model": cpu_model(),
        "lstm_bench.cpu_count": str(os.cpu_count()),
        "lstm_bench.torch_threads": str(torch.get_num_threads()),
        **process_tags(),  # the host, and the process that owns the run (orphans)
        "lstm_bench.git_commit": str(source_commit()["id"]),
        # Timings at `medium` and up move with huge pages (docs/scratch_fast.md, "Process settings").
        **{f"lstm_bench.huge_pages.{who}": value for who, value in huge_pages.settings().items()},
        # scratch_fast's CPU loops: "fused" (compiled) or "plain", where the build failed or was turned off.
        "lstm_bench.scratch_fast_loops": fused_steps.path(),
    }
    problem = fused_steps.problem()
    if problem:
        tags["lstm_bench.scratch_fast_loops_problem"] = problem
    if device.startswith("cuda") and torch.cuda.is_available():
        tags["lstm_bench.gpu_model"] = torch.cuda.get_device_name(0)
        tags["lstm_bench.cuda_version"] = str(torch.version.cuda)
    return tags
