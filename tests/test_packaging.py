"""A non-editable install holds everything the entry points need: they run from any folder, without the checkout."""

import subprocess
import sys

import mlflow
import pytest

from tests.helpers import REPO, all_runs, project_env

pytestmark = pytest.mark.slow  # builds a wheel and runs two entry points from it


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> str:
    """The project built as a wheel and installed, without its dependencies (this environment has them), into a
    folder of its own."""
    folder = tmp_path_factory.mktemp("installed")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(folder / "wheel"), str(REPO)],
                   check=True, capture_output=True, timeout=600)
    wheel = next((folder / "wheel").glob("lstm_bench-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(folder / "site"),
                    str(wheel)], check=True, capture_output=True, timeout=600)
    return str(folder / "site")


def test_the_install_holds_the_data_the_report_template_and_the_suite(installed):
    from pathlib import Path

    site = Path(installed)
    for path in ("lstm_models/data/sunspots.csv", "mlflow_project/templates/report.html",
                 "benchmarks/test_lstm_passes.py", "benchmarks/plugin.py"):
        assert (site / path).is_file(), path


def _environment(site: str, uri: str) -> dict[str, str]:
    env = project_env(uri)
    env["PYTHONPATH"] = site  # the installed copy only, not the checkout
    return env


def _run(module: str, args: list[str], site: str, uri: str, cwd) -> subprocess.CompletedProcess:
    code = (f"import runpy, sys, {module}; assert {module}.__file__.startswith({site!r}), {module}.__file__; "
            f"sys.argv = [{module!r}, *{args!r}]; runpy.run_module({module!r}, run_name='__main__')")
    return subprocess.run([sys.executable, "-c", code], env=_environment(site, uri), cwd=cwd, capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL)


def test_train_runs_from_an_installed_copy_in_any_folder(installed, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    done = _run("mlflow_project.train", ["--impls", "native", "--seeds", "0", "--max-epochs", "3", "--progress-bar",
                                         "off"], installed, uri, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = all_runs(mlflow.MlflowClient(uri))
    assert sorted(run.info.status for run in runs) == ["FINISHED", "FINISHED"]


def test_benchmark_runs_the_installed_suite_from_any_folder(installed, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    done = _run("mlflow_project.benchmark", ["--impls", "native", "--shapes", "toy", "--threads", "1", "--profile",
                                             "default"], installed, uri, tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (run,) = all_runs(mlflow.MlflowClient(uri))
    assert run.info.status == "FINISHED" and "default.cpu.forward_backward.toy.native.median_ms" in run.data.metrics
