"""pytest-benchmark JSON -> a pandas table with ratios to native and their intervals, GFLOP/s, MLflow metrics.

Every ratio comes with its spread: a bootstrap 95 % interval of the ratio of medians, resampling each side's timed
rounds. It says how far the rounds of this session leave the ratio uncertain; a machine whose speed drifts between
sessions can move it further, which only repeated sessions show.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .comparison import markdown_table

SHAPE_ORDER = ("toy", "small", "medium", "large")
PASS_ORDER = ("forward", "backward", "forward_backward")


BOOTSTRAP_RESAMPLES = 2000
KEYS = ["profile", "device", "pass", "shape"]  # what a ratio compares within


def ratio_interval(rounds: list[float], native_rounds: list[float], resamples: int = BOOTSTRAP_RESAMPLES,
                   seed: int = 0) -> tuple[float, float]:
    """Bootstrap 95 % interval of median(rounds) / median(native_rounds), each side resampled on its own."""
    if len(rounds) < 2 or len(native_rounds) < 2:
        return float("nan"), float("nan")
    generator = np.random.default_rng(seed)
    ours = np.median(generator.choice(rounds, (resamples, len(rounds))), axis=1)
    theirs = np.median(generator.choice(native_rounds, (resamples, len(native_rounds))), axis=1)
    low, high = np.percentile(ours / theirs, [2.5, 97.5])
    return float(low), float(high)


def load_results(paths: list[Path]) -> pd.DataFrame:
    """One row per timed pass of every file (``lstm_models.benchmarking.result_files.timed_passes``; a file per
    process profile), with times in ms, GFLOP/s, and the ratio to native in the same (profile, device, pass, shape)
    with its interval (``ratio_low``, ``ratio_high``)."""
    from lstm_models.benchmarking.result_files import timed_passes

    frame = pd.DataFrame([row for path in paths for row in timed_passes(path)])
    if frame.empty:
        return frame
    frame["median_ms"] = frame["median_s"] * 1e3
    frame["gflops"] = frame["flops"] / frame["median_s"] / 1e9
    native = frame[frame["impl"] == "native"].set_index(KEYS)
    keys = pd.MultiIndex.from_frame(frame[KEYS])
    frame["ratio_to_native"] = frame["median_s"].to_numpy() / native["median_s"].reindex(keys).to_numpy()
    native_rounds = native["rounds_s"].reindex(keys).tolist()
    intervals = [ratio_interval(rounds, reference) if isinstance(reference, list) else (np.nan, np.nan)
                 for rounds, reference in zip(frame["rounds_s"], native_rounds)]
    frame["ratio_low"], frame["ratio_high"] = zip(*intervals)
    return frame


def grid_results(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["sweep"].isna()] if "sweep" in frame else frame


def sweep_results(frame: pd.DataFrame) -> pd.DataFrame:
    """The scaling sweeps' rows (none where the session timed no sweep)."""
    return frame[frame["sweep"].notna()] if "sweep" in frame else frame.iloc[0:0]


def impl_profile_pairs(frame: pd.DataFrame) -> list[tuple[str, str]]:
    """Every (implementation, profile) in ``frame``, sorted: the columns of a table or the bars of a figure."""
    return sorted({(impl, profile) for impl, profile in zip(frame["impl"], frame["profile"])})


def metrics_of(frame: pd.DataFrame) -> dict[str, float]:
    """``{profile}.{device}.{pass}.{shape}.{impl}.median_ms`` / ``.ratio_to_native`` (with ``.ratio_low`` and
    ``.ratio_high``, its interval) / ``.gflops`` / ``.check_ms`` (the checks before timing, where ``compiled``
    compiles) / ``.first_call_ms`` (the pass's untimed first call) for the grid, and
    ``{profile}.scaling.{sweep}.{impl}.slope`` for the sweeps."""
    metrics = {}
    for row in grid_results(frame).to_dict("records"):
        prefix = f"{row['profile']}.{row['device']}.{row['pass']}.{row['shape']}.{row['impl']}"
        metrics[f"{prefix}.median_ms"] = float(row["median_ms"])
        metrics[f"{prefix}.gflops"] = float(row["gflops"])
        for stat in ("ratio_to_native", "ratio_low", "ratio_high"):
            if np.isfinite(row[stat]):
                metrics[f"{prefix}.{stat}"] = float(row[stat])
        for stat in ("first_call", "check"):
            if row.get(f"{stat}_s") is not None and np.isfinite(row[f"{stat}_s"]):
                metrics[f"{prefix}.{stat}_ms"] = float(row[f"{stat}_s"]) * 1e3
    for row in scaling_slopes(frame).to_dict("records"):
        metrics[f"{row['profile']}.scaling.{row['sweep']}.{row['impl']}.slope"] = row["slope"]
    return metrics


def _known(value) -> bool:
    return value is not None and np.isfinite(value)


def ratio_text(ratio: float, low: float | None = None, high: float | None = None) -> str:
    """'1.22x', with its interval where known: '1.22x, 1.18-1.25'."""
    spread = f", {low:.2f}-{high:.2f}" if _known(low) and _known(high) else ""
    return f"{ratio:.2f}x{spread}"


def time_cell(impl: str, median_ms: float, ratio: float | None, low: float | None = None,
              high: float | None = None) -> str:
    """A table cell: '12.3 ms', with the ratio to native after it for other implementations (``ratio_text``):
    '15 ms (1.22x)', '15 ms (1.22x, 1.18-1.25)'."""
    # Three significant digits, but whole milliseconds from 1000 up ('1440 ms', not '1.44e+03 ms').
    shown = f"{median_ms:.0f}" if median_ms >= 1000 else f"{median_ms:.3g}"
    if impl == "native" or not _known(ratio):
        return f"{shown} ms"
    return f"{shown} ms ({ratio_text(ratio, low, high)})"


def results_table(frame: pd.DataFrame, profile: str, device: str) -> pd.DataFrame:
    """Rows (shape, pass), a column per implementation: 'median ms (ratio to native, its 95 % interval)'."""
    grid = grid_results(frame)
    grid = grid[(grid["device"] == device) & (grid["profile"] == profile)]
    rows = []
    for shape in [s for s in SHAPE_ORDER if s in set(grid["shape"])]:
        for pass_name in [p for p in PASS_ORDER if p in set(grid["pass"])]:
            cell = grid[(grid["shape"] == shape) & (grid["pass"] == pass_name)].set_index("impl")
            row = {"shape": shape, "pass": pass_name}
            for impl in sorted(grid["impl"].unique()):
                if impl in cell.index:
                    row[impl] = time_cell(impl, *cell.loc[impl, ["median_ms", "ratio_to_native", "ratio_low",
                                                                 "ratio_high"]])
                else:
                    row[impl] = "-"
            rows.append(row)
    return pd.DataFrame(rows)


def scaling_slopes(frame: pd.DataFrame) -> pd.DataFrame:
    """Least-squares slope of log(time) against log(size) per (sweep, impl)."""
    sweeps = sweep_results(frame)
    rows = []
    for (profile, sweep, impl), group in sweeps.groupby(["profile", "sweep", "impl"]):
        if len(group) >= 2:
            slope, _ = np.polyfit(np.log(group["value"].astype(float)), np.log(group["median_s"]), 1)
            rows.append({"profile": profile, "sweep": sweep, "impl": impl, "slope": float(slope)})
    return pd.DataFrame(rows, columns=["profile", "sweep", "impl", "slope"])


def write_outputs(frame: pd.DataFrame, folder: Path) -> list[Path]:
    """results.csv, results.md (a table per profile and device), and the figures (``benchmark_figures``)."""
    from .benchmark_figures import plot_ratios, plot_scaling, plot_times

    folder.mkdir(parents=True, exist_ok=True)
    frame.drop(columns=["rounds_s"]).to_csv(folder / "results.csv", index=False)
    sections = []
    grid = grid_results(frame)
    for device in sorted(grid["device"].unique()):
        for profile in sorted(grid["profile"].unique()):
            sections += [f"## {device}, profile {profile}", "", markdown_table(results_table(frame, profile, device)),
                         ""]
            plot_times(frame, profile, device, folder / f"times_{profile}_{device}.png")
        plot_ratios(frame, device, folder / f"ratios_{device}.png")
    slopes = scaling_slopes(frame)
    if not slopes.empty:
        slopes.to_csv(folder / "scaling_slopes.csv", index=False)
        sections += ["## scaling (log-log slopes, CPU forward+backward)", "", markdown_table(slopes), ""]
        plot_scaling(frame, folder / "scaling.png")
    (folder / "results.md").write_text("\n".join(sections))
    return sorted(folder.iterdir())
