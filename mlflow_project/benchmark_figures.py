"""The benchmark's figures: times per shape, ratios to native under each process profile, scaling sweeps."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .benchmark_results import (PASS_ORDER, SHAPE_ORDER, grid_results, impl_profile_pairs, scaling_slopes,  # noqa: E402
                                sweep_results)


def plot_times(frame: pd.DataFrame, profile: str, device: str, path: Path) -> Path | None:
    """One panel per pass: median time per shape (log scale), a bar per implementation, ratio to native on top."""
    grid = grid_results(frame)
    grid = grid[(grid["device"] == device) & (grid["profile"] == profile)]
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
        ax.set(yscale="log", ylabel="median time (ms)", title=f"{device}, profile {profile}: {pass_name}")
        ax.grid(alpha=0.3, axis="y")
    axes[0][0].legend(fontsize=8)
    fig.suptitle("Median time per shape; labels: ratio to native (lower is faster)")
    return _save(fig, path)


def plot_ratios(frame: pd.DataFrame, device: str, path: Path) -> Path | None:
    """One panel per pass: each implementation's ratio to native per shape, a bar per (implementation, profile)
    side by side, with its 95 % interval; the line at 1.0 is native."""
    grid = grid_results(frame)
    grid = grid[(grid["device"] == device) & (grid["impl"] != "native")]
    if grid.empty:
        return None
    passes = [p for p in PASS_ORDER if p in set(grid["pass"])]
    shapes = [s for s in SHAPE_ORDER if s in set(grid["shape"])]
    bars = impl_profile_pairs(grid)
    fig, axes = plt.subplots(1, len(passes), figsize=(5.5 * len(passes), 4.5), squeeze=False)
    width = 0.8 / len(bars)
    colors = plt.get_cmap("tab20")
    for ax, pass_name in zip(axes[0], passes):
        for index, (impl, profile) in enumerate(bars):
            cell = grid[(grid["pass"] == pass_name) & (grid["impl"] == impl) & (grid["profile"] == profile)]
            cell = cell.set_index("shape").reindex(shapes)
            xs = np.arange(len(shapes)) + (index - (len(bars) - 1) / 2) * width
            ratio = cell["ratio_to_native"].to_numpy(dtype=float)
            errors = np.abs(np.vstack([ratio - cell["ratio_low"].to_numpy(dtype=float),
                                       cell["ratio_high"].to_numpy(dtype=float) - ratio]))
            ax.bar(xs, ratio, width, yerr=np.nan_to_num(errors), capsize=2, color=colors(index),
                   label=f"{impl}, {profile}")
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(shapes)), shapes)
        ax.set(ylabel="time / native's time", title=f"{device}: {pass_name}")
        ax.grid(alpha=0.3, axis="y")
    axes[0][0].legend(fontsize=7)
    fig.suptitle("Ratio to nn.LSTM in the same process profile (below 1: faster); bars: 95 % bootstrap interval")
    return _save(fig, path)


def plot_scaling(frame: pd.DataFrame, path: Path) -> Path | None:
    sweeps = sweep_results(frame)
    if sweeps.empty:
        return None
    slopes = scaling_slopes(frame).set_index(["profile", "sweep", "impl"])["slope"]
    names = sorted(sweeps["sweep"].unique())
    fig, axes = plt.subplots(1, len(names), figsize=(6 * len(names), 4.5), squeeze=False)
    for ax, sweep in zip(axes[0], names):
        for (profile, impl), group in sweeps[sweeps["sweep"] == sweep].groupby(["profile", "impl"]):
            group = group.sort_values("value")
            slope = slopes.get((profile, sweep, impl), np.nan)
            ax.plot(group["value"], group["median_ms"], marker="o", label=f"{impl}, {profile} (slope {slope:.2f})")
        ax.set(xscale="log", yscale="log", xlabel=sweep, ylabel="median forward+backward time (ms)",
               title=f"CPU scaling with {sweep}")
        # The swept values as the axis' only labels: log axes otherwise label minor ticks too, which overlap.
        values = sorted(sweeps[sweeps["sweep"] == sweep]["value"].astype(int).unique())
        ax.set_xticks(values, [str(value) for value in values])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
