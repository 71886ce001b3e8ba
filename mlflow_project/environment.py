"""Tags that say where a result came from: library versions, the machine, the device and the code's commit."""

from __future__ import annotations

import os
import platform
import subprocess
from functools import lru_cache
from pathlib import Path

import torch

from lstm_models.core.scratch_fast import huge_pages

from .orphans import process_tags

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo where there is one, else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@lru_cache(maxsize=1)
def git_commit() -> str:
    """The commit of the checkout the code runs from, or 'unknown' outside a git checkout."""
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                                timeout=10, check=True)
        return result.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


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
        "lstm_bench.git_commit": git_commit(),
        # Timings at `medium` and up move with huge pages (docs/scratch_fast.md, "Process settings").
        **{f"lstm_bench.huge_pages.{who}": value for who, value in huge_pages.settings().items()},
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        tags["lstm_bench.gpu_model"] = torch.cuda.get_device_name(0)
        tags["lstm_bench.cuda_version"] = str(torch.version.cuda)
    return tags
