"""The README's "Bring your own LSTM" walk-through, end to end, with the example under examples/cell_lstm: check,
compare, benchmark, and the same module registered by an installed package."""

import json
import os
import subprocess
import sys

import mlflow
import pytest

from tests.helpers import REPO, all_runs, project_env

pytestmark = pytest.mark.slow  # three entry points and a package install

EXAMPLE = REPO / "examples" / "cell_lstm"
SPEC = "cell=cell_lstm:CellLSTM"
# The walk-through's commands as the README gives them (the test below checks that it does).
CHECK = f"python -m lstm_models.check {SPEC}"
COMPARE = f"mlflow run . --env-manager local -P impls=native,{SPEC} -P seeds=0,1 -P max_epochs=100"
BENCHMARK = (f"pytest benchmarks/test_lstm_passes.py --benchmark-only --lstm-impls native,{SPEC} "
             "--lstm-shapes toy,small")


def _shell(command: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", command], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    # Without pytest-xdist's variables, as the suite's own processes have it (suite_environment).
    environment = {name: value for name, value in project_env(f"sqlite:///{tmp_path / 'mlflow.db'}").items()
                   if not name.startswith("PYTEST_XDIST_")}
    environment["PYTHONPATH"] = os.pathsep.join([str(EXAMPLE), environment["PYTHONPATH"]])
    return environment


def test_the_readme_gives_these_commands():
    readme = (REPO / "README.md").read_text()
    assert all(command in readme for command in ("export PYTHONPATH=examples/cell_lstm", CHECK, COMPARE, BENCHMARK))


def test_check_then_compare_then_benchmark(env, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", env["MLFLOW_TRACKING_URI"])  # for mlflow.artifacts below
    checked = _shell(CHECK, env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "cell (cell=cell_lstm:CellLSTM): nn.LSTM's function on every case it supports" in checked.stdout

    compared = _shell(COMPARE, env)
    assert compared.returncode == 0, compared.stderr[-3000:]
    client = mlflow.MlflowClient(env["MLFLOW_TRACKING_URI"])
    runs = all_runs(client)
    cells = [run for run in runs if run.data.params.get("impl") == "cell"]
    assert sorted(run.info.run_name for run in cells) == ["cell-seed0", "cell-seed1"]
    for run in cells:
        assert run.info.status == "FINISHED" and run.data.params["impl_spec"] == SPEC
        assert run.data.tags["lstm_bench.conformance"] == "passed"
        table = mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/conformance.md")
        assert "| float64 no_bias" in table
    parent = next(run for run in runs if run.data.tags.get("lstm_bench.role") == "comparison")
    summary = mlflow.artifacts.load_text(f"runs:/{parent.info.run_id}/comparison/summary.md")
    assert "trains the same as native" in next(line for line in summary.splitlines() if line.startswith("| cell"))

    json_path = tmp_path / "results.json"
    timed = _shell(f"{BENCHMARK} --benchmark-json={json_path} -p no:cacheprovider -p no:xdist", env)
    assert timed.returncode == 0, timed.stdout[-3000:]
    entries = [entry["extra_info"] for entry in json.loads(json_path.read_text())["benchmarks"]]
    assert sorted({(info["impl"], info["shape"]) for info in entries}) == [
        ("cell", "small"), ("cell", "toy"), ("native", "small"), ("native", "toy")]


def test_an_installed_package_registers_its_name(tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                    str(EXAMPLE)], check=True, capture_output=True, timeout=600)
    env = project_env(f"sqlite:///{tmp_path / 'mlflow.db'}")
    env["PYTHONPATH"] = os.pathsep.join([str(target), env["PYTHONPATH"]])
    listed = subprocess.run([sys.executable, "-m", "mlflow_project.train", "--help"], env=env, capture_output=True,
                            text=True, timeout=120)
    shown = " ".join(listed.stdout.split())  # argparse wraps its help
    assert "registered names (compiled, native, scratch, scratch_fast, statquest, cell)" in shown
    checked = subprocess.run([sys.executable, "-m", "lstm_models.check", "cell"], env=env, capture_output=True,
                             text=True, timeout=300)
    assert checked.returncode == 0, checked.stderr[-2000:]
    assert "cell (cell): nn.LSTM's function" in checked.stdout
