"""The comparison of a set of child runs: summary table, equivalence to ``native``, and figures.

Everything works on two pandas frames, so the ``train`` entry point (from its in-memory histories) and the
``report`` entry point (from ``mlflow.search_runs`` and metric histories) share it:

- ``runs``: one row per child run: impl, seed, status, and its final metrics as columns.
- ``histories``: long format, one row per (impl, seed, metric, epoch) with its value.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

CONVERGENCE_TOLERANCE = 0.05
# Two float32 implementations of one function drift apart by rounding only, and Adam amplifies the drift: on
# the toy data after 300 epochs it reached 2e-4 (scratch vs native, seed 1). A different optimisation problem,
# such as statquest's single bias per gate, moves the loss by 1e-1. 1e-3 sits between the two.
SAME_TRAINING_TOLERANCE = 1e-3
SUMMARY_METRICS = ("final_train_loss", "final_val_loss", "final_prediction_A", "final_prediction_B",
                   "epochs_to_converge", "training_seconds", "steps_per_second", "max_loss_gap_vs_native")


def epochs_to_converge(predictions: dict[str, list[tuple[int, float]]], labels: dict[str, float],
                       tolerance: float = CONVERGENCE_TOLERANCE) -> int | None:
    """First epoch after which every probe's prediction is within ``tolerance`` of its label; None if never."""
    by_epoch: dict[int, dict[str, float]] = {}
    for name, series in predictions.items():
        for epoch, value in series:
            by_epoch.setdefault(epoch, {})[name] = value
    for epoch in sorted(by_epoch):
        values = by_epoch[epoch]
        if len(values) == len(labels) and all(abs(values[n] - labels[n]) <= tolerance for n in labels):
            return epoch
    return None


def loss_gaps(histories: pd.DataFrame, metric: str = "train_loss") -> pd.DataFrame:
    """Per (impl, seed): the largest |loss - native's loss| over the epochs both have, for the same seed."""
    losses = histories[histories["metric"] == metric]
    native = losses[losses["impl"] == "native"].set_index(["seed", "epoch"])["value"]
    rows = []
    for (impl, seed), group in losses.groupby(["impl", "seed"]):
        if native.empty or seed not in native.index.get_level_values("seed"):
            continue
        reference = native.loc[seed]
        joined = group.set_index("epoch")["value"].to_frame("value").join(reference.rename("native"), how="inner")
        if not joined.empty:
            rows.append({"impl": impl, "seed": seed, "max_loss_gap_vs_native": float(
                (joined["value"] - joined["native"]).abs().max())})
    return pd.DataFrame(rows, columns=["impl", "seed", "max_loss_gap_vs_native"])


def verdict(gap: float | None) -> str:
    if gap is None or pd.isna(gap):
        return "no native run to compare"
    if gap <= SAME_TRAINING_TOLERANCE:
        return "trains the same as native"
    return "trains differently from native"


def summary_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per implementation: runs, failures, and mean and standard deviation over seeds of each final metric."""
    rows = []
    for impl, group in runs.groupby("impl", sort=True):
        finished = group[group["status"] == "FINISHED"]
        row = {"impl": impl, "runs": len(group), "failed": int((group["status"] != "FINISHED").sum())}
        if "epochs_to_converge" in finished:
            # A negative value means "never within tolerance": count those runs apart, average the others.
            converged = finished["epochs_to_converge"] >= 0
            row["converged"] = f"{int(converged.sum())}/{len(finished)}"
            finished = finished.assign(epochs_to_converge=finished["epochs_to_converge"].where(converged))
        for metric in SUMMARY_METRICS:
            if metric in finished and finished[metric].notna().any():
                row[f"{metric}_mean"] = finished[metric].mean()
                row[f"{metric}_std"] = finished[metric].std(ddof=0)
        gap = finished["max_loss_gap_vs_native"].max() if "max_loss_gap_vs_native" in finished else None
        if "conformance" in group and (group["conformance"] == "failed").any():
            row["verdict"] = "differs from nn.LSTM"  # lstm_models.check: trained all the same, for its user to see
        elif finished.empty:
            row["verdict"] = "every run failed"
        else:
            row["verdict"] = "native itself" if impl == "native" else verdict(gap)
        rows.append(row)
    return pd.DataFrame(rows)


def write_comparison(runs: pd.DataFrame, histories: pd.DataFrame, labels: dict[str, float] | None,
                     folder: Path) -> pd.DataFrame:
    """Summary table, per-run table, equivalence and figures into ``folder``; returns the summary."""
    gaps = loss_gaps(histories)
    if not gaps.empty:
        runs = runs.drop(columns=["max_loss_gap_vs_native"], errors="ignore").merge(gaps, on=["impl", "seed"],
                                                                                      how="left")
    summary = summary_table(runs)
    folder.mkdir(parents=True, exist_ok=True)
    runs.to_csv(folder / "runs.csv", index=False)
    summary.to_csv(folder / "summary.csv", index=False)
    (folder / "summary.md").write_text(markdown_table(display_table(summary)) + "\n")
    histories.to_csv(folder / "histories.csv", index=False)
    plot_loss_curves(histories, folder / "loss_curves.png")
    plot_loss_gaps(histories, folder / "loss_gap_vs_native.png")
    if labels:
        plot_predictions(histories, labels, folder / "predictions.png")
    return summary


def display_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary as a person reads it: 'mean ± std' cells, short column names."""
    shown = pd.DataFrame({"impl": summary["impl"], "runs": summary["runs"], "failed": summary["failed"]})
    if "converged" in summary:
        shown["converged"] = summary["converged"]
    for metric in SUMMARY_METRICS:
        if f"{metric}_mean" not in summary:
            continue
        mean, std = summary[f"{metric}_mean"], summary[f"{metric}_std"]
        precision = ".1f" if metric in ("epochs_to_converge", "steps_per_second") else (
            ".2f" if metric == "training_seconds" else ".2e" if metric == "max_loss_gap_vs_native" else ".4f")
        shown[metric.removeprefix("final_")] = [
            "-" if pd.isna(m) else f"{m:{precision}} ± {s:{precision}}" for m, s in zip(mean, std)]
    shown["verdict"] = summary["verdict"]
    return shown


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table, cells as they are (numbers already formatted stay so)."""
    return frame.astype(str).to_markdown(index=False, tablefmt="github", disable_numparse=True)


def _colors(impls) -> dict[str, str]:
    palette = plt.get_cmap("tab10")
    return {impl: palette(index % 10) for index, impl in enumerate(sorted(impls))}


def _style(impl: str, impls) -> dict:
    """Colour and dash per implementation: curves that coincide (the point of the comparison) stay visible."""
    ordered = sorted(impls)
    index = ordered.index(impl)
    return {"color": _colors(impls)[impl], "linestyle": ("-", "--", ":", "-.")[index % 4],
            "linewidth": 2.4 - 0.5 * (index % 4)}


def _legend(ax, **options) -> None:
    """A legend when there is something to name (a comparison whose every run failed draws no curve)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**options)


def plot_loss_curves(histories: pd.DataFrame, path: Path) -> Path:
    """Training (and validation) loss of every run, one colour per implementation, log scale."""
    losses = histories[histories["metric"].isin(["train_loss", "val_loss"])]
    impls = losses["impl"].unique()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for (impl, seed, metric), group in losses.groupby(["impl", "seed", "metric"]):
        style = _style(impl, impls)
        ax.plot(group["epoch"], group["value"], alpha=0.8 if metric == "train_loss" else 0.4, **style,
                label=f"{impl} seed {seed}" + (" (val)" if metric == "val_loss" else ""))
    ax.set(xlabel="epoch", ylabel="loss (MSE)", yscale="log", title="Loss curves, all implementations overlaid")
    _legend(ax, fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_predictions(histories: pd.DataFrame, labels: dict[str, float], path: Path) -> Path:
    """The tutorial's out_0/out_1 plots: each company's prediction over training, one panel per company."""
    names = sorted(labels)
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 4), squeeze=False)
    impls = histories["impl"].unique()
    for ax, name in zip(axes[0], names):
        series = histories[histories["metric"] == f"prediction_{name}"]
        for (impl, seed), group in series.groupby(["impl", "seed"]):
            ax.plot(group["epoch"], group["value"], alpha=0.8, label=f"{impl} seed {seed}", **_style(impl, impls))
        ax.axhline(labels[name], color="black", linestyle=":", label=f"label {labels[name]:g}")
        ax.set(xlabel="epoch", ylabel="prediction", title=f"Company {name}")
        ax.grid(alpha=0.3)
    _legend(axes[0][-1], fontsize=7)
    return _save(fig, path)


def plot_loss_gaps(histories: pd.DataFrame, path: Path) -> Path | None:
    """|loss - native's loss| per epoch for each implementation and seed: how far from native they drift."""
    losses = histories[histories["metric"] == "train_loss"]
    native = losses[losses["impl"] == "native"].set_index(["seed", "epoch"])["value"]
    if native.empty:
        return None
    fig, ax = plt.subplots(figsize=(8, 4))
    colors = _colors(losses["impl"].unique())
    for (impl, seed), group in losses[losses["impl"] != "native"].groupby(["impl", "seed"]):
        reference = native.reindex(pd.MultiIndex.from_arrays([[seed] * len(group), group["epoch"]]))
        gap = (group["value"].to_numpy() - reference.to_numpy()).__abs__()
        ax.plot(group["epoch"], gap + 1e-12, color=colors[impl], alpha=0.8, label=f"{impl} seed {seed}")
    ax.axhline(SAME_TRAINING_TOLERANCE, color="black", linestyle=":", label="'same' threshold")
    ax.set(xlabel="epoch", ylabel="|loss - native loss| (+1e-12)", yscale="log",
           title="Distance from native's loss curve, same seed")
    _legend(ax, fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
