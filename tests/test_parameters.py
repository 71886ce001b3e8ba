"""Each entry point's parameters are declared once (its config dataclass); MLproject, the README's tables and
conda.yaml's dependencies are held to those single definitions."""



import pytest
import yaml

from mlflow_project.benchmark import BenchmarkConfig
from mlflow_project.cli import as_params, markdown_parameters, option, parameters, parse_config
from mlflow_project.config import TrainConfig
from mlflow_project.report import ReportConfig
from tests.helpers import REPO

tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")

ENTRY_POINTS = {"main": TrainConfig, "benchmark": BenchmarkConfig, "report": ReportConfig}


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_mlproject_forwards_every_parameter_with_its_default(entry_point):
    declared = yaml.safe_load((REPO / "MLproject").read_text())["entry_points"][entry_point]
    config_class = ENTRY_POINTS[entry_point]
    want = {spec.name: spec.metadata["text"] for spec in parameters(config_class)}
    assert {name: str(spec["default"]) for name, spec in declared["parameters"].items()} == want
    assert all(spec["type"] == "string" for spec in declared["parameters"].values())  # checked by the entry point
    for name in want:
        assert f"{option(name)} {{{name}}}" in declared["command"], name


@pytest.mark.parametrize("config_class", ENTRY_POINTS.values(), ids=ENTRY_POINTS)
def test_the_docs_show_each_parameter_table_as_declared(config_class):
    docs = "\n".join(path.read_text() for path in (REPO / "README.md", REPO / "docs" / "tracking.md"))
    assert markdown_parameters(config_class) in docs


@pytest.mark.parametrize("config_class", ENTRY_POINTS.values(), ids=ENTRY_POINTS)
def test_defaults_round_trip_through_mlflow_params(config_class):
    config = parse_config(config_class, {})
    assert config == config_class()
    assert parse_config(config_class, as_params(config)) == config


def test_conda_yaml_installs_what_pyproject_requires():
    required = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    conda = yaml.safe_load((REPO / "conda.yaml").read_text())["dependencies"]
    pip = next(entry["pip"] for entry in conda if isinstance(entry, dict))
    assert pip == required
