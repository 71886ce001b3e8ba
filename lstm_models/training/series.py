"""Univariate series -> supervised windows: ``window`` past values predict the next one.

Pure data handling (pandas and torch, no Lightning) so it can be validated and tested on its own. Scaling is
fitted on the training part only, so the validation windows never leak into it.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd
import torch


class SeriesError(ValueError):
    """A series that cannot be windowed; the message says what is wrong and where."""


SUNSPOTS_COLUMN = "SUNACTIVITY"


def sunspots_path() -> Path:
    """The yearly sunspot series shipped inside the package (NOAA NGDC, 1700-2008, public domain)."""
    return Path(str(resources.files("lstm_models") / "data" / "sunspots.csv"))


def load_series(path: str | Path, column: str | None = None) -> torch.Tensor:
    """Read one numeric column of a CSV file (default: the last one) as a float64 tensor, refusing anything that
    is not a clean series."""
    path = Path(path)
    if not path.is_file():
        raise SeriesError(f"csv: file not found: {path}")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SeriesError(f"csv: {path} is not a readable CSV file: {first_line}") from None
    if column is None and len(frame.columns):
        column = str(frame.columns[-1])
    if column not in frame.columns:
        available = ", ".join(map(str, frame.columns)) or "none"
        raise SeriesError(f"csv: {path} has no column {column!r} (columns: {available})")
    raw = frame[column].str.strip()
    values = pd.to_numeric(raw, errors="coerce")
    for index, (text, value) in enumerate(zip(raw, values)):
        line = index + 2  # the header is line 1
        if text == "" or text.lower() in {"nan", "na", "null", "none"}:
            raise SeriesError(f"csv: {path} line {line}: column {column!r} is empty or NaN")
        if pd.isna(value):
            raise SeriesError(f"csv: {path} line {line}: column {column!r} value {text!r} is not a number")
        if value in (float("inf"), float("-inf")):
            raise SeriesError(f"csv: {path} line {line}: column {column!r} value {text!r} is not finite")
    return torch.tensor(values.to_numpy(dtype="float64"))


def make_windows(series: torch.Tensor, window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """series (N,) -> inputs (N - window, window) and targets (N - window,): each window predicts the next value."""
    inputs = series.unfold(0, window, 1)[:-1]  # (N - window, window)
    targets = series[window:]  # (N - window,)
    return inputs, targets


@dataclass(frozen=True)
class WindowedSeries:
    """Train and validation windows of one series, scaled to [0, 1] by the training part's range."""

    train_inputs: torch.Tensor  # (N_train, window)
    train_targets: torch.Tensor  # (N_train,)
    val_inputs: torch.Tensor  # (N_val, window)
    val_targets: torch.Tensor  # (N_val,)
    offset: float
    scale: float

    def unscale(self, values: torch.Tensor) -> torch.Tensor:
        return values * self.scale + self.offset


def window_series(series: torch.Tensor, window: int, val_fraction: float, source: str = "series") -> WindowedSeries:
    """Chronological split: the last ``val_fraction`` of the windows validate, the rest train."""
    if window < 1:
        raise SeriesError(f"window must be a positive integer, got {window}")
    if not 0.0 <= val_fraction < 1.0:
        raise SeriesError(f"val_fraction must be in [0, 1), got {val_fraction}")
    count = len(series) - window
    if count < 1:
        raise SeriesError(f"{source}: {len(series)} values are too few for one window of {window} "
                          f"plus a target (need at least {window + 1})")
    inputs, targets = make_windows(series, window)
    val_count = int(round(count * val_fraction))
    train_count = count - val_count
    if train_count < 1:
        raise SeriesError(f"{source}: no training window left after a validation split of {val_fraction}")
    # Fit the scaling on the values the training windows see, so validation stays unseen.
    seen = series[: train_count + window]
    offset = float(seen.min())
    scale = float(seen.max() - seen.min()) or 1.0
    scaled_inputs, scaled_targets = (inputs - offset) / scale, (targets - offset) / scale
    return WindowedSeries(
        train_inputs=scaled_inputs[:train_count].float(), train_targets=scaled_targets[:train_count].float(),
        val_inputs=scaled_inputs[train_count:].float(), val_targets=scaled_targets[train_count:].float(),
        offset=offset, scale=scale,
    )
