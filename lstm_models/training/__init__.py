"""The Lightning side: a LightningModule that trains any registered core, and the data modules."""

from .datamodules import (COMPANY_LABELS, COMPANY_SEQUENCES, CompaniesDataModule, CsvDataModule,
                          SunspotsDataModule, WindowedSeriesDataModule)
from .regressor import LSTMRegressor
from .series import SeriesError, load_series, make_windows, sunspots_path, window_series

__all__ = [
    "COMPANY_LABELS", "COMPANY_SEQUENCES", "CompaniesDataModule", "CsvDataModule", "LSTMRegressor",
    "SeriesError", "SunspotsDataModule", "WindowedSeriesDataModule", "load_series", "make_windows",
    "sunspots_path", "window_series",
]
