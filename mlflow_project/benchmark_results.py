"""pytest-benchmark JSON -> a pandas table with ratios to native and GFLOP/s, MLflow metrics and figures."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .comparison import markdown_table  # noqa: E402

SHAPE_ORDER = ("toy", "small", "medium", "large")
PASS_ORDER = ("forward", "backward", "forward_backward")


def load_results(path: Path) -> pd.DataFrame:
    """One row per timed pass (``lstm_models.benchmarking.result_files.timed_passes``), with times in ms, GFLOP/s and the ratio
    to native in the same (device, pass, shape)."""
    from lstm_models.benchmarking.result_files import timed_passes  # the suite's package, beside this one in the project

    frame = pd.DataFrame(timed_passes(path))
    if frame.empty:
        return frame
    frame["median_ms"] = frame["median_s"] * 1e3
    frame["gflops"] = frame["flops"] / frame["median_s"] / 1e9
    native = frame[frame["impl"] == "native"].set_index(["device", "pass", "shape"])["median_s"]
    keys = pd.MultiIndex.from_frame(frame[["device", "pass", "shape"]])
    frame["ratio_to_native"] = frame["median_s"].to_numpy() / native.reindex(keys).to_numpy()
    return frame


def grid_results(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["sweep"].isna()] if "sweep" in frame else frame


def metrics_of(frame: pd.DataFrame) -> dict[str, float]:
    """``{device}.{pass}.{shape}.{impl}.median_ms`` / ``.ratio_to_native`` / ``.gflops`` / ``.first_call_ms`` (the
    untimed first call: ``compiled``'s compilation) for the grid, and ``scaling.{sweep}.{impl}.slope`` for the
    sweeps."""
    metrics = {}
    for row in grid_results(frame).to_dict("records"):
        prefix = f"{row['device']}.{row['pass']}.{row['shape']}.{row['impl']}"
        metrics[f"{prefix}.median_ms"] = float(row["median_ms"])
        metrics[f"{prefix}.gflops"] = float(row["gflops"])
        if np.isfinite(row["ratio_to_native"]):
            metrics[f"{prefix}.ratio_to_native"] = float(row["ratio_to_native"])
        if row.get("first_call_s") is not None and np.isfinite(row["first_call_s"]):
            metrics[f"{prefix}.first_call_ms"] = float(row["first_call_s"]) * 1e3
    for row in scaling_slopes(frame).to_dict("records"):
        metrics[f"scaling.{row['sweep']}.{row['impl']}.slope"] = row["slope"]
    return metrics


def time_cell(impl: str, median_ms: float, ratio: float | None) -> str:
    """A table cell: '12.3 ms', with the ratio to native after it for other implementations: '15 ms (1.22x)'."""
    known_ratio = ratio is not None and np.isfinite(ratio)
    # Three significant digits, but whole milliseconds from 1000 up ('1440 ms', not '1.44e+03 ms').
    shown = f"{median_ms:.0f}" if median_ms >= 1000 else f"{median_ms:.3g}"
    return f"{shown} ms" + (f" ({ratio:.2f}x)" if impl != "native" and known_ratio else "")


def results_table(frame: pd.DataFrame, device: str) -> pd.DataFrame:
    """Rows (shape, pass), a column per implementation: 'median ms (ratio to native)'."""
    grid = grid_results(frame)
    grid = grid[grid["device"] == device]
    rows = []
    for shape in [s for s in SHAPE_ORDER if s in set(grid["shape"])]:
        for pass_name in [p for p in PASS_ORDER if p in set(grid["pass"])]:
            cell = grid[(grid["shape"] == shape) & (grid["pass"] == pass_name)].set_index("impl")
            row = {"shape": shape, "pass": pass_name}
            for impl in sorted(grid["impl"].unique()):
                if impl in cell.index:
                    row[impl] = time_cell(impl, cell.loc[impl, "median_ms"], cell.loc[impl, "ratio_to_native"])
                else:
                    row[impl] = "-"
            rows.append(row)
    return pd.DataFrame(rows)


def plot_times(frame: pd.DataFrame, device: str, path: Path) -> Path | None:
    """One panel per pass: median time per shape (log scale), a bar per implementation, ratio to native on top."""
    grid = grid_results(frame)
    grid = grid[grid["device"] == device]
    if grid.empty:
        return None
    passes = [p for p in PASS_ORDER if p in set(grid["pass"])]
    shapes = [s for s in SHAPE_ORDER if s in set(grid["shape"])]
    impls = sorted(grid["impl"].unique())
    fig, axes = plt.subplots(1, len(passes), figsize=(5.5 * len(passes), 4.5), squeeze=False)
    width = 0.8 / len(impls)
    for ax, pass_name in zip(axes[0], passes):
        for index, impl in enumerate(impls):
            cell = grid[(grid["pass"] == pass_name) & (grid["impl"] == impl)].set_index("shape")
            xs = [i + (index - (len(impls) - 1) / 2) * width for i in range(len(shapes))]
            heights = [cell["median_ms"].get(shape, np.nan) for shape in shapes]
            bars = ax.bar(xs, heights, width, label=impl)
            for bar, shape in zip(bars, shapes):
                ratio = cell["ratio_to_native"].get(shape, np.nan)
                if impl != "native" and np.isfinite(ratio):
                    ax.annotate(f"{ratio:.2f}x", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                                ha="center", va="bottom", fontsize=7, rotation=90)
        ax.set_xticks(range(len(shapes)), shapes)
        ax.set(yscale="log", ylabel="median time (ms)", title=f"{device}: {pass_name}")
        ax.grid(alpha=0.3, axis="y")
    axes[0][0].legend(fontsize=8)
    fig.suptitle("Median time per shape; labels: ratio to native (lower is faster)")
    return _save(fig, path)


def scaling_slopes(frame: pd.DataFrame) -> pd.DataFrame:
    """Least-squares slope of log(time) against log(size) per (sweep, impl)."""
    sweeps = frame[frame["sweep"].notna()] if "sweep" in frame else frame.iloc[0:0]
    rows = []
    for (sweep, impl), group in sweeps.groupby(["sweep", "impl"]):
        if len(group) >= 2:
            slope, _ = np.polyfit(np.log(group["value"].astype(float)), np.log(group["median_s"]), 1)
            rows.append({"sweep": sweep, "impl": impl, "slope": float(slope)})
    return pd.DataFrame(rows, columns=["sweep", "impl", "slope"])


def plot_scaling(frame: pd.DataFrame, path: Path) -> Path | None:
    sweeps = frame[frame["sweep"].notna()] if "sweep" in frame else frame.iloc[0:0]
    if sweeps.empty:
        return None
    slopes = scaling_slopes(frame).set_index(["sweep", "impl"])["slope"]
    names = sorted(sweeps["sweep"].unique())
    fig, axes = plt.subplots(1, len(names), figsize=(6 * len(names), 4.5), squeeze=False)
    for ax, sweep in zip(axes[0], names):
        for impl, group in sweeps[sweeps["sweep"] == sweep].groupby("impl"):
            group = group.sort_values("value")
            slope = slopes.get((sweep, impl), np.nan)
            ax.plot(group["value"], group["median_ms"], marker="o", label=f"{impl} (slope {slope:.2f})")
        ax.set(xscale="log", yscale="log", xlabel=sweep, ylabel="median forward+backward time (ms)",
               title=f"CPU scaling with {sweep}")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    return _save(fig, path)


def write_outputs(frame: pd.DataFrame, folder: Path) -> list[Path]:
    """results.csv, results.md (a table per device), and the figures."""
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_csv(folder / "results.csv", index=False)
    sections = []
    for device in sorted(grid_results(frame)["device"].unique()):
        sections += [f"## {device}", "", markdown_table(results_table(frame, device)), ""]
        plot_times(frame, device, folder / f"times_{device}.png")
    slopes = scaling_slopes(frame)
    if not slopes.empty:
        slopes.to_csv(folder / "scaling_slopes.csv", index=False)
        sections += ["## scaling (log-log slopes, CPU forward+backward)", "", markdown_table(slopes), ""]
        plot_scaling(frame, folder / "scaling.png")
    (folder / "results.md").write_text("\n".join(sections))
    return sorted(folder.iterdir())


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
