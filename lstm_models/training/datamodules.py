"""LightningDataModules: the tutorial's two companies, the sunspot series, and a user's own CSV series.

Every module yields batches of ``(inputs (B, T), targets (B,))``. The toy module also exposes ``probes``, the
sequences whose predictions are logged every epoch (the tutorial's ``out_0`` and ``out_1``).
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from .series import SUNSPOTS_COLUMN, WindowedSeries, load_series, sunspots_path, window_series

# The tutorial's data: the same last three days, and the first day decides what happens on day five.
COMPANY_SEQUENCES = {"A": [0.0, 0.5, 0.25, 1.0], "B": [1.0, 0.5, 0.25, 1.0]}
COMPANY_LABELS = {"A": 0.0, "B": 1.0}


class CompaniesDataModule(L.LightningDataModule):
    """The tutorial's companies A and B; batch size 1 and no shuffling, as in the tutorial."""

    has_validation = False

    def __init__(self, batch_size: int = 1):
        super().__init__()
        self.batch_size = batch_size
        self.inputs = torch.tensor(list(COMPANY_SEQUENCES.values()))  # (2, 4)
        self.targets = torch.tensor(list(COMPANY_LABELS.values()))  # (2,)
        self.probes = {name: torch.tensor(seq) for name, seq in COMPANY_SEQUENCES.items()}  # name -> (4,)
        self.labels = dict(COMPANY_LABELS)

    def describe(self) -> dict:
        return {"name": "companies", "windows": len(self.targets), "window": self.inputs.shape[1]}

    def train_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(self.inputs, self.targets), batch_size=self.batch_size, shuffle=False)


class WindowedSeriesDataModule(L.LightningDataModule):
    """Windows of a univariate series -> the next value, scaled, split chronologically into train and validation."""

    has_validation = True
    probes: dict = {}

    def __init__(self, path: str | Path, column: str | None, window: int = 10, val_fraction: float = 0.2,
                 batch_size: int = 32, name: str = "csv"):
        super().__init__()
        self.path, self.column, self.window, self.name = Path(path), column, window, name
        self.batch_size = batch_size
        # Loaded eagerly: a malformed file should fail before any training starts, not inside Trainer.fit.
        self.series = load_series(self.path, column)
        self.windows: WindowedSeries = window_series(self.series, window, val_fraction, source=f"csv: {self.path}")
        self.has_validation = len(self.windows.val_targets) > 0

    def describe(self) -> dict:
        return {"name": self.name, "path": str(self.path), "column": self.column, "window": self.window,
                "train_windows": len(self.windows.train_targets), "val_windows": len(self.windows.val_targets)}

    def train_dataloader(self) -> DataLoader:
        data = TensorDataset(self.windows.train_inputs, self.windows.train_targets)
        return DataLoader(data, batch_size=self.batch_size, shuffle=False)

    def val_dataloader(self) -> DataLoader:
        data = TensorDataset(self.windows.val_inputs, self.windows.val_targets)
        return DataLoader(data, batch_size=self.batch_size, shuffle=False)


class SunspotsDataModule(WindowedSeriesDataModule):
    """Yearly sunspot activity 1700-2008, shipped with the package: ``window`` past years -> the next year."""

    def __init__(self, window: int = 10, val_fraction: float = 0.2, batch_size: int = 32):
        super().__init__(sunspots_path(), SUNSPOTS_COLUMN, window, val_fraction, batch_size, name="sunspots")


class CsvDataModule(WindowedSeriesDataModule):
    """A user's own univariate series: one numeric column (default: the last) of a CSV file with a header row."""

    def __init__(self, path: str | Path, column: str | None = None, window: int = 10, val_fraction: float = 0.2,
                 batch_size: int = 32):
        super().__init__(path, column, window, val_fraction, batch_size, name="csv")
