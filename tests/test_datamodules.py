"""Data: the tutorial's companies, the shipped sunspot series, and a user's CSV with every malformed case."""

import pytest
import torch

from lstm_models.training import (CompaniesDataModule, CsvDataModule, SeriesError, SunspotsDataModule,
                                  load_series, make_windows, window_series)


def test_companies_are_the_tutorials():
    data = CompaniesDataModule()
    batches = list(data.train_dataloader())
    assert len(batches) == 2 and all(len(targets) == 1 for _, targets in batches)
    assert batches[0][0].tolist() == [[0.0, 0.5, 0.25, 1.0]] and batches[0][1].tolist() == [0.0]
    assert batches[1][0].tolist() == [[1.0, 0.5, 0.25, 1.0]] and batches[1][1].tolist() == [1.0]
    assert set(data.probes) == {"A", "B"}


def test_windows_predict_the_next_value():
    inputs, targets = make_windows(torch.arange(6.0), window=3)
    assert inputs.tolist() == [[0, 1, 2], [1, 2, 3], [2, 3, 4]]
    assert targets.tolist() == [3, 4, 5]


def test_sunspots_ships_with_the_package_and_splits_chronologically():
    data = SunspotsDataModule(window=10, val_fraction=0.2)
    series = data.series
    assert len(series) == 309 and float(series[0]) == 5.0
    windows = data.windows
    assert len(windows.train_targets) + len(windows.val_targets) == 309 - 10
    assert len(windows.val_targets) == round(299 * 0.2)
    # chronological: the first validation target is the year right after the last training target
    last_train = windows.unscale(windows.train_targets[-1:].double())
    first_val = windows.unscale(windows.val_targets[:1].double())
    index = len(windows.train_targets) + 10
    torch.testing.assert_close(last_train, series[index - 1: index], rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(first_val, series[index: index + 1], rtol=1e-5, atol=1e-3)
    # scaling comes from the training part only
    assert float(windows.train_inputs.min()) == 0.0 and float(windows.train_inputs.max()) <= 1.0
    x, y = next(iter(data.train_dataloader()))
    assert x.shape == (32, 10) and y.shape == (32,)
    assert next(iter(data.val_dataloader()))[0].shape[1] == 10


def _write(tmp_path, text, name="series.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_csv_reads_a_named_column(tmp_path):
    path = _write(tmp_path, "day,price\n" + "".join(f"{i},{i * 1.5}\n" for i in range(30)))
    data = CsvDataModule(path, column="price", window=5, val_fraction=0.2)
    assert len(data.windows.train_targets) + len(data.windows.val_targets) == 25
    assert load_series(path).tolist() == [i * 1.5 for i in range(30)]  # default: the last column


@pytest.mark.parametrize("text, column, window, expected", [
    ("value\n1\n2\nabc\n4\n", "value", 2, r"line 4: column 'value' value 'abc' is not a number"),
    ("value\n1\nNaN\n3\n4\n", "value", 2, r"line 3: column 'value' is empty or NaN"),
    ("a,value\n1,1\n2,\n3,3\n", "value", 1, r"line 3: column 'value' is empty or NaN"),
    ("price\n1\n2\n3\n", "value", 2, r"has no column 'value' \(columns: price\)"),
    ("value\n1\n2\n", "value", 2, r"2 values are too few for one window of 2 plus a target \(need at least 3\)"),
    ("value\n1\ninf\n3\n", "value", 1, r"line 3: column 'value' value 'inf' is not finite"),
    ("", "value", 2, r"is not a readable CSV file"),
], ids=["non_numeric", "nan", "empty_cell", "missing_column", "too_short", "infinite", "empty_file"])
def test_malformed_csv_gets_a_one_line_error(tmp_path, text, column, window, expected):
    path = _write(tmp_path, text)
    with pytest.raises(SeriesError, match=expected) as error:
        CsvDataModule(path, column=column, window=window, val_fraction=0.0)
    assert "\n" not in str(error.value) and str(path) in str(error.value)


def test_missing_csv_file_is_named(tmp_path):
    with pytest.raises(SeriesError, match="file not found: .*nowhere.csv"):
        CsvDataModule(tmp_path / "nowhere.csv")


@pytest.mark.parametrize("window, fraction, expected", [(0, 0.2, "window"), (3, 1.0, "val_fraction")])
def test_window_arguments_are_checked(window, fraction, expected):
    with pytest.raises(SeriesError, match=expected):
        window_series(torch.arange(20.0), window, fraction)
