"""Benchmark runs in a tracking store, grouped by the machine that produced them (for the report).

Several machines (a CPU box, a GPU box) can log benchmark runs to one tracking server; their times are only
comparable within a machine. A machine is identified by its tags: host name, CPU model and GPU model. For each
machine the latest finished benchmark run is shown, as the table the benchmark run logged: median ms and the
ratio to native, with its interval, per (profile, device, shape, pass).
"""

from __future__ import annotations

import mlflow
import pandas as pd

from .benchmark_results import PASS_ORDER, SHAPE_ORDER, time_cell


BENCHMARKS_INTRO = ("The latest finished benchmark run of each machine that logged to this store; times compare "
                    "within a machine only.")


def machine_of(run: mlflow.entities.Run) -> str:
    tags = run.data.tags
    gpu = tags.get("lstm_bench.gpu_model")
    return (f"{tags.get('lstm_bench.hostname', 'unknown host')}: {tags.get('lstm_bench.cpu_model', 'unknown CPU')}"
            + (f", {gpu}" if gpu else "") + f", {tags.get('lstm_bench.torch_threads', '?')} threads, "
            f"torch {tags.get('lstm_bench.torch_version', '?')}")


def table_from_metrics(metrics: dict[str, float]) -> pd.DataFrame:
    """``{profile}.{device}.{pass}.{shape}.{impl}.median_ms`` (and ``.ratio_to_native``, ``.ratio_low``,
    ``.ratio_high``) -> rows (profile, device, shape, pass), a column per implementation."""
    cells: dict[tuple[str, str, str, str], dict[str, str]] = {}
    for key, value in metrics.items():
        parts = key.split(".")
        if len(parts) != 6 or parts[5] != "median_ms":
            continue
        profile, device, pass_name, shape, impl, _ = parts
        prefix = ".".join(parts[:5])
        ratios = [metrics.get(f"{prefix}.{stat}") for stat in ("ratio_to_native", "ratio_low", "ratio_high")]
        cells.setdefault((profile, device, shape, pass_name), {})[impl] = time_cell(impl, value, *ratios)

    def order(key):
        profile, device, shape, pass_name = key
        return (profile, device, SHAPE_ORDER.index(shape) if shape in SHAPE_ORDER else 99,
                PASS_ORDER.index(pass_name) if pass_name in PASS_ORDER else 99)

    rows = [{"profile": profile, "device": device, "shape": shape, "pass": pass_name, **impls}
            for (profile, device, shape, pass_name), impls in sorted(cells.items(), key=lambda item: order(item[0]))]
    return pd.DataFrame(rows).fillna("-")


def benchmarks_by_machine() -> list[tuple[str, mlflow.entities.Run, pd.DataFrame]]:
    """(machine, its latest finished benchmark run, that run's table), one entry per machine."""
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list",
                              filter_string="tags.`lstm_bench.role` = 'benchmark' and attributes.status = 'FINISHED'",
                              order_by=["attributes.start_time DESC"])
    latest: dict[str, mlflow.entities.Run] = {}
    for run in runs:
        latest.setdefault(machine_of(run), run)
    return [(machine, run, table_from_metrics(run.data.metrics)) for machine, run in sorted(latest.items())]
