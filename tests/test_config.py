"""Parameter checking of the train entry point: every bad value named, exit status 2, no run started."""

import pytest

from mlflow_project.cli import ConfigError
from mlflow_project.config import TrainConfig, build_config
from mlflow_project.train import main


def test_defaults_reproduce_the_tutorial():
    config = build_config({})
    assert config == TrainConfig()
    assert (config.dataset, config.hidden_size, config.batch_size) == ("companies", 1, 1)
    assert config.impls == tuple(sorted(config.impls)) and "native" in config.impls


def test_values_are_parsed():
    config = build_config({"impls": "scratch, native,scratch", "seeds": "3,1", "lr": "1e-2", "max_epochs": "7"})
    assert config.impls == ("scratch", "native") and config.seeds == (3, 1)
    assert config.lr == 0.01 and config.max_epochs == 7
    assert config.runs == [("scratch", 3), ("scratch", 1), ("native", 3), ("native", 1)]


@pytest.mark.parametrize("parameter, value, message", [
    ("lr", "abc", "lr: must be a positive number, got 'abc'"),
    ("lr", "-1", "lr: must be a positive number"),
    ("lr", "nan", "lr: must be a positive number"),
    ("max_epochs", "0", "max_epochs: must be a positive integer"),
    ("hidden_size", "0", "hidden_size: must be a positive integer"),
    ("num_layers", "1.5", "num_layers: must be a positive integer"),
    ("batch_size", "", "batch_size: must be a positive integer"),
    ("seeds", "a,b", "seeds: must be comma-separated non-negative integers"),
    ("seeds", "-1", "seeds: must be comma-separated non-negative integers"),
    ("impls", "native,lstm2", "impls: spec 'lstm2': unknown LSTM implementation; registered: compiled, native"),
    ("impls", "no_such_module:LSTM", "impls: spec 'no_such_module:LSTM': cannot import no_such_module"),
    ("dataset", "weather", "dataset: must be companies or sunspots or the path of an existing CSV file"),
    ("init", "xavier", "init: must be one of lstm, statquest"),
    ("accelerator", "tpu9", "accelerator: must be one of"),
    ("devices", "0", "devices: must be 'auto' or a positive integer"),
    ("strategy", "magic", "strategy: must be one of auto"),
    ("val_fraction", "1.5", "val_fraction: must be a number in [0, 1)"),
    ("workers", "0", "workers: must be 'auto' or a positive integer"),
    ("workers", "two", "workers: must be 'auto' or a positive integer"),
])
def test_bad_values_are_named(parameter, value, message):
    with pytest.raises(ConfigError) as error:
        build_config({parameter: value})
    assert str(error.value).startswith(message) and error.value.parameter == parameter
    assert "\n" not in str(error.value)


def test_worker_count():
    assert build_config({"workers": "3", "impls": "native", "seeds": "0,1"}).worker_count == 2  # never above runs
    assert build_config({"workers": "auto", "impls": "native", "seeds": "0"}).worker_count == 1
    assert build_config({"workers": "auto", "strategy": "ddp"}).worker_count == 1  # Lightning owns the processes
    with pytest.raises(ConfigError, match="^workers: must be 1 or auto unless"):
        build_config({"workers": "2", "strategy": "ddp"})


def test_statquest_needs_size_one():
    with pytest.raises(ConfigError, match="hidden_size: must be one that statquest takes"):
        build_config({"hidden_size": "8"})  # 'all' includes statquest
    assert build_config({"hidden_size": "8", "impls": "native,scratch"}).hidden_size == 8


def test_cli_exits_2_with_one_line_and_starts_no_run(sqlite_store, capsys):
    import mlflow

    assert main(["--lr", "abc"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: lr: must be a positive number, got 'abc'"
    assert mlflow.search_runs(search_all_experiments=True, output_format="list") == []


def test_bad_csv_is_a_dataset_error(tmp_path, sqlite_store, capsys):
    path = tmp_path / "bad.csv"
    path.write_text("value\n1\nx\n3\n")
    assert main(["--dataset", str(path), "--impls", "native"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: dataset: csv:") and "line 3" in err and "'x' is not a number" in err


def test_help_lists_parameters(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--impls", "--seeds", "--dataset", "--max-epochs", "--lr", "--init", "--accelerator"):
        assert flag in out
