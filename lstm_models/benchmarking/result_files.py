"""The benchmark suite's results as pytest-benchmark writes them (``--benchmark-json``): the one place that reads
that layout, for ``repeat_grid`` and for the MLflow ``benchmark`` entry point (``mlflow_project.benchmark_results``).
"""

from __future__ import annotations

import json
from pathlib import Path


class ResultFileError(ValueError):
    """A file that is not the suite's results; the message is one line and names the file."""


def timed_passes(path: Path) -> list[dict]:
    """One row per timed pass: impl, device, pass, shape, threads, flops, sweep and value (None outside the scaling
    sweeps), median_s, min_s, iqr_s, rounds, first_call_s and check_s (None where not recorded), group, profile
    (the process profile the session ran under) and rounds_s (every round's time). Peak-memory results are left
    out: their time is a process's start-up, not a pass."""
    try:
        results = json.loads(Path(path).read_text())
        profile = results.get("machine_info", {}).get("profile", "default")
        rows = []
        for bench in results["benchmarks"]:
            info, stats = bench["extra_info"], bench["stats"]
            if info.get("pass") == "memory":
                continue  # benchmarks/test_peak_memory.py
            rows.append({"impl": info["impl"], "device": info["device"], "pass": info["pass"],
                         "shape": info["shape"], "threads": info["threads"], "flops": info["flops"],
                         "sweep": info.get("sweep"), "value": info.get("value"), "median_s": stats["median"],
                         "min_s": stats["min"], "iqr_s": stats["iqr"], "rounds": stats["rounds"],
                         "first_call_s": info.get("first_call_s"), "check_s": info.get("check_s"),
                         "group": bench["group"], "profile": profile,
                         "rounds_s": stats.get("data", [])})
        return rows
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ResultFileError(f"{path}: not a result file of the grid ({type(error).__name__}: {error})") from None
